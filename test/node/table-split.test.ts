/**
 * Tables whose rows span several ranges (splits at partition keys): each
 * row lives in the range of its partition key, a scan page covers one range
 * and ends at its edge with where to go on, and following the pages forward
 * and backward returns every row once, in order; auto-increment, batches,
 * GC and schema checks work per range.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TesseraClient } from '../../src/client/client.ts';
import { partitionSplitKey } from '../../src/table/routing.ts';
import { gcRemovedRecords, httpCaller } from '../support/http-call.ts';
import { LocalCluster } from '../support/local-cluster.ts';

const TEST_TIMEOUT_MS = 120_000;
const SPLITS = [
  'table:events',
  'table:events:string:g',
  'table:events:string:p',
  'table:gcs:string:m',
  'table:ids:integer:100',
  'table:logs:string:m',
];
const cluster = new LocalCluster('tessera-table-split-', [1, 2, 3], SPLITS);
let endpoints: string[] = [];
const call = httpCaller(() => endpoints);

before(async () => {
  await cluster.init();
  await cluster.waitForLeader(30_000);
  endpoints = [...cluster.nodes.values()].map((n) => n.http);
});

after(async () => {
  await cluster.dispose();
});

type Pk = Record<string, unknown>;
interface Page {
  rows: { primaryKey: Pk }[];
  next: Pk | null;
  nextExclusive?: boolean;
}

async function scanPage(table: string, body: Record<string, unknown>): Promise<Page> {
  const r = await call('POST', `/v1/tables/${table}/scan`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as unknown as Page;
}

/** Every page of a scan, following `next` (and `nextExclusive`) until it is null. */
async function scanPages(table: string, body: Record<string, unknown>): Promise<Page[]> {
  const pages: Page[] = [];
  let at: Record<string, unknown> = body;
  for (let i = 0; i < 200; i++) {
    const page = await scanPage(table, at);
    pages.push(page);
    if (page.next === null) return pages;
    at = { ...body, start: page.next, startExclusive: page.nextExclusive === true };
  }
  assert.fail('the scan did not end within 200 pages');
}

const keysOf = (pages: Page[]): Pk[] => pages.flatMap((p) => p.rows.map((r) => r.primaryKey));

test(
  'GC collects old versions in every range of a table, not only its first',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const created = await call('POST', '/v1/tables', {
      name: 'gcs',
      primaryKey: [{ name: 'k', type: 'string' }],
      maxVersions: 1,
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    // Row "z" lives in the range that starts at partition key "m".
    for (let i = 0; i < 5; i++) {
      await call('POST', '/v1/tables/gcs/put', {
        row: { k: 'z', v: { value: i, version: Date.now() - 1000 + i } },
      });
    }
    const removed = (): Promise<number> => gcRemovedRecords(endpoints);
    for (let i = 0; i < 150 && (await removed()) === 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok((await removed()) > 0, 'the leader of the second range collected the old versions');
    const row = await call('POST', '/v1/tables/gcs/get', {
      primaryKey: { k: 'z' },
      maxVersions: 9,
    });
    assert.deepEqual((row.body.row as { columns: { v: unknown[] } }).columns.v.length, 1);
  },
);

test(
  'a table over three ranges: pages end at range edges, stitched scans see every row once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const created = await call('POST', '/v1/tables', {
      name: 'events',
      primaryKey: [
        { name: 'stream', type: 'string' },
        { name: 'seq', type: 'integer' },
      ],
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const ranges = (await call('GET', '/v1/ranges')).body.ranges as { start: string }[];
    const starts = ranges.map((r) => r.start);
    for (const p of ['g', 'p']) {
      assert.ok(
        starts.includes(partitionSplitKey('events', 'string', p)),
        `a range starts at ${p}`,
      );
    }
    const streams = ['a', 'c', 'g', 'h', 'o', 'p', 'q', 'z'];
    const all: Pk[] = streams.flatMap((stream) => [1, 2, 3].map((seq) => ({ stream, seq })));
    for (const pk of all) {
      const r = await call('POST', '/v1/tables/events/put', { row: { ...pk, n: 1 } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }

    // The first page covers the first range only, fewer rows than asked, then points on.
    const first = await scanPage('events', { limit: 100 });
    assert.deepEqual(
      first.rows.map((r) => r.primaryKey.stream),
      ['a', 'a', 'a', 'c', 'c', 'c'],
    );
    assert.deepEqual(first.next, { stream: 'g' });
    assert.equal(first.nextExclusive, undefined);
    // Backward, the first page is the last range; the next one starts strictly below "p".
    const last = await scanPage('events', { direction: 'backward', limit: 100 });
    assert.deepEqual(
      last.rows.map((r) => r.primaryKey.stream),
      ['z', 'z', 'z', 'q', 'q', 'q', 'p', 'p', 'p'],
    );
    assert.deepEqual(last.next, { stream: 'p' });
    assert.equal(last.nextExclusive, true);

    for (const limit of [1, 2, 100]) {
      const forward = await scanPages('events', { limit });
      assert.deepEqual(keysOf(forward), all, `forward, limit ${limit}`);
      assert.ok(forward.length >= 3, 'at least one page per range');
      const backward = await scanPages('events', { limit, direction: 'backward' });
      assert.deepEqual(keysOf(backward), [...all].reverse(), `backward, limit ${limit}`);
    }

    // Bounded both ways: forward [c2, q2), backward (c2, q2].
    const at = (pk: Pk): number => all.findIndex((k) => k.stream === pk.stream && k.seq === pk.seq);
    const c2 = { stream: 'c', seq: 2 };
    const q2 = { stream: 'q', seq: 2 };
    assert.deepEqual(
      keysOf(await scanPages('events', { start: c2, end: q2, limit: 2 })),
      all.slice(at(c2), at(q2)),
    );
    assert.deepEqual(
      keysOf(await scanPages('events', { start: q2, end: c2, limit: 2, direction: 'backward' })),
      all.slice(at(c2) + 1, at(q2) + 1).reverse(),
    );
    // A partial start at a boundary: forward from {stream: "g"}, backward from just below it.
    assert.deepEqual(
      keysOf(await scanPages('events', { start: { stream: 'g' }, limit: 4 })),
      all.slice(at({ stream: 'g', seq: 1 })),
    );
    assert.deepEqual(
      keysOf(
        await scanPages('events', { start: { stream: 'g' }, limit: 4, direction: 'backward' }),
      ),
      all.slice(0, at({ stream: 'g', seq: 1 })).reverse(),
    );
    // Exclusive starts on a full key.
    assert.deepEqual(
      keysOf(await scanPages('events', { start: c2, startExclusive: true, limit: 5 })),
      all.slice(at(c2) + 1),
    );
    assert.deepEqual(
      keysOf(
        await scanPages('events', {
          start: q2,
          startExclusive: true,
          direction: 'backward',
          limit: 5,
        }),
      ),
      all.slice(0, at(q2)).reverse(),
    );
    // The TypeScript client stitches the same scans, routing each page to its range.
    const client = new TesseraClient({ endpoints });
    const handle = client.table('events');
    for (const direction of ['forward', 'backward'] as const) {
      const seen: Pk[] = [];
      for await (const r of handle.scanAll({ limit: 2, direction })) {
        seen.push({ stream: r.primaryKey.stream, seq: Number(r.primaryKey.seq) });
      }
      assert.deepEqual(seen, direction === 'forward' ? all : [...all].reverse(), direction);
    }
    const bad = await call('POST', '/v1/tables/events/scan', { startExclusive: 'yes' });
    assert.equal(bad.body.code, 'INVALID_ARGUMENT');
  },
);

test(
  'a one-column key split at a row: the boundary row is read once both ways',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const wrong = await call('POST', '/v1/tables', {
      name: 'ids',
      primaryKey: [{ name: 'id', type: 'string' }],
    });
    assert.equal(wrong.body.code, 'INVALID_SCHEMA', 'the split at ids is an integer partition key');
    const created = await call('POST', '/v1/tables', {
      name: 'ids',
      primaryKey: [{ name: 'id', type: 'integer' }],
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const ids = [97, 98, 99, 100, 101, 102];
    for (const id of ids) await call('POST', '/v1/tables/ids/put', { row: { id, n: id } });

    const down = await scanPage('ids', { direction: 'backward', limit: 10 });
    assert.deepEqual(
      down.rows.map((r) => r.primaryKey.id),
      [102, 101, 100],
    );
    assert.deepEqual(down.next, { id: 100 });
    assert.equal(down.nextExclusive, true, 'row 100 was read: the next page starts below it');
    const rest = await scanPage('ids', {
      direction: 'backward',
      limit: 10,
      start: down.next,
      startExclusive: true,
    });
    assert.deepEqual(
      rest.rows.map((r) => r.primaryKey.id),
      [99, 98, 97],
    );
    assert.equal(rest.next, null);

    const up = await scanPage('ids', { limit: 10 });
    assert.deepEqual(
      up.rows.map((r) => r.primaryKey.id),
      [97, 98, 99],
    );
    assert.deepEqual(up.next, { id: 100 });
    assert.equal(up.nextExclusive, undefined, 'forward, the next page starts at row 100');
    // An inclusive backward start at the boundary row reads it, then goes below.
    assert.deepEqual(
      keysOf(await scanPages('ids', { direction: 'backward', start: { id: 100 }, limit: 1 })).map(
        (k) => k.id,
      ),
      [100, 99, 98, 97],
    );
    assert.deepEqual(
      keysOf(await scanPages('ids', { limit: 1 })).map((k) => k.id),
      ids,
    );
  },
);

test('auto-increment and batches in a split table', { timeout: TEST_TIMEOUT_MS }, async () => {
  const created = await call('POST', '/v1/tables', {
    name: 'logs',
    primaryKey: [
      { name: 'stream', type: 'string' },
      { name: 'seq', type: 'integer', autoIncrement: true },
    ],
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const seqs: unknown[] = [];
  for (const stream of ['a', 'z', 'a', 'z', 'z']) {
    const r = await call('POST', '/v1/tables/logs/put', { row: { stream, body: 'x' } });
    seqs.push((r.body.primaryKey as { seq: number }).seq);
  }
  assert.deepEqual(seqs, [1, 1, 2, 2, 3], 'one counter per partition key, in either range');

  const acrossRanges = await call('POST', '/v1/tables/batch-write', {
    atomic: true,
    writes: [
      { table: 'logs', kind: 'put', row: { stream: 'b', body: 'x' } },
      { table: 'logs', kind: 'put', row: { stream: 'y', body: 'x' } },
    ],
  });
  assert.equal(acrossRanges.body.code, 'INVALID_ARGUMENT');
  assert.match(String(acrossRanges.body.message), /one range/);
  const oneRange = await call('POST', '/v1/tables/batch-write', {
    atomic: true,
    writes: [
      { table: 'logs', kind: 'put', row: { stream: 'b', body: 'x' } },
      { table: 'logs', kind: 'put', row: { stream: 'c', body: 'x' } },
    ],
  });
  assert.deepEqual(
    (oneRange.body.results as { ok?: boolean }[]).map((r) => r.ok),
    [true, true],
  );
  // Not atomic, sent to one node: each range's rows apply or fail on their own.
  const mixed = await call('POST', '/v1/tables/batch-write', {
    writes: [
      { table: 'logs', kind: 'put', row: { stream: 'd', body: 'x' } },
      { table: 'logs', kind: 'put', row: { stream: 'x', body: 'x' } },
    ],
  });
  for (const r of mixed.body.results as { ok?: boolean; error?: { code: string } }[]) {
    assert.ok(r.ok === true || r.error?.code === 'NOT_LEADER', JSON.stringify(r));
  }
  const rows = keysOf(await scanPages('logs', { limit: 100 }));
  const streams = rows.map((k) => k.stream);
  assert.deepEqual(
    streams.filter((s) => s !== 'd' && s !== 'x'),
    ['a', 'a', 'b', 'c', 'z', 'z', 'z'],
  );
});
