/**
 * Tables on a real 3-node cluster through the JSON/HTTP API: schemas in the
 * meta range, versioned rows, conditional writes, increments applied
 * exactly once per session, scans in pages both ways, and clear errors for
 * bad requests.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { gcRemovedRecords, httpCaller, type Reply } from '../support/http-call.ts';
import { LocalCluster } from '../support/local-cluster.ts';

const TEST_TIMEOUT_MS = 120_000;
const cluster = new LocalCluster('tessera-tables-');
let endpoints: string[] = [];

before(async () => {
  await cluster.init();
  await cluster.waitForLeader(30_000);
  endpoints = [...cluster.nodes.values()].map((n) => n.http);
});

after(async () => {
  await cluster.dispose();
});

const call = httpCaller(() => endpoints);

const USERS = {
  name: 'users',
  primaryKey: [
    { name: 'region', type: 'string' },
    { name: 'id', type: 'integer' },
  ],
  maxVersions: 3,
};

test(
  'schemas: create, describe, list, alter, drop, with clear errors',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const created = await call('POST', '/v1/tables', USERS);
    assert.equal(created.status, 200);
    assert.deepEqual(created.body.table, {
      ...USERS,
      ttlSeconds: null,
      maxVersionOffsetSeconds: 86400,
    });
    const again = await call('POST', '/v1/tables', USERS);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'ALREADY_EXISTS');
    const bad = await call('POST', '/v1/tables', { name: 'x', primaryKey: [] });
    assert.equal(bad.body.code, 'INVALID_SCHEMA');
    const list = await call('GET', '/v1/tables');
    assert.deepEqual(
      (list.body.tables as { name: string }[]).map((t) => t.name),
      ['users'],
    );
    const altered = await call('PATCH', '/v1/tables/users', { ttlSeconds: 86400 * 365 });
    assert.equal((altered.body.table as { ttlSeconds: number }).ttlSeconds, 86400 * 365);
    const pk = await call('PATCH', '/v1/tables/users', { primaryKey: [] });
    assert.equal(pk.status, 400, 'the primary key cannot change');
    const missing = await call('GET', '/v1/tables/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'NOT_FOUND');
  },
);

test(
  'rows: versions, conditions, increments once per session',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const pk = { region: 'eu', id: 1 };
    assert.equal(
      (await call('POST', '/v1/tables/users/put', { row: { ...pk, name: 'Ada', age: 36 } })).status,
      200,
    );
    await new Promise((r) => setTimeout(r, 5));
    const up = await call('POST', '/v1/tables/users/update', {
      primaryKey: pk,
      put: { name: 'Ada L.' },
    });
    assert.equal(up.status, 200);
    const got = await call('POST', '/v1/tables/users/get', { primaryKey: pk, maxVersions: 3 });
    const row = got.body.row as {
      primaryKey: unknown;
      columns: Record<string, { value: unknown; version: number }[]>;
    };
    assert.deepEqual(row.primaryKey, pk);
    assert.deepEqual(
      row.columns.name!.map((c) => c.value),
      ['Ada L.', 'Ada'],
      'newest version first',
    );
    const old = await call('POST', '/v1/tables/users/get', {
      primaryKey: pk,
      at: row.columns.name![1]!.version,
    });
    assert.equal(
      (old.body.row as typeof row).columns.name![0]!.value,
      'Ada',
      'read as of an old version',
    );
    // A failed condition changes nothing.
    const failed = await call('POST', '/v1/tables/users/put', {
      row: { ...pk, name: 'Mallory' },
      condition: { expect: 'not_exist' },
    });
    assert.equal(failed.status, 412);
    assert.equal(failed.body.code, 'CONDITION_FAILED');
    const cond = await call('POST', '/v1/tables/users/update', {
      primaryKey: pk,
      put: { name: 'Eve' },
      condition: { if: { column: 'age', op: '>', value: 40 } },
    });
    assert.equal(cond.body.code, 'CONDITION_FAILED');
    const after1 = await call('POST', '/v1/tables/users/get', { primaryKey: pk });
    assert.equal((after1.body.row as typeof row).columns.name![0]!.value, 'Ada L.');
    // An increment retried with the same session applies once.
    const session = { 'x-tessera-client': '777001', 'x-tessera-seq': '1' };
    const inc1 = await call(
      'POST',
      '/v1/tables/users/update',
      { primaryKey: pk, increment: { age: 1 } },
      session,
    );
    const inc2 = await call(
      'POST',
      '/v1/tables/users/update',
      { primaryKey: pk, increment: { age: 1 } },
      session,
    );
    assert.deepEqual(inc1.body, { ok: true, increments: { age: 37 } });
    assert.deepEqual(inc2.body, inc1.body, 'the retry is answered from the first attempt');
    const inc3 = await call(
      'POST',
      '/v1/tables/users/update',
      { primaryKey: pk, increment: { age: 1 } },
      {
        ...session,
        'x-tessera-seq': '2',
      },
    );
    assert.deepEqual(inc3.body.increments, { age: 38 });
    // Delete, then the row is gone.
    assert.equal((await call('POST', '/v1/tables/users/delete', { primaryKey: pk })).status, 200);
    assert.equal((await call('POST', '/v1/tables/users/get', { primaryKey: pk })).body.row, null);
  },
);

test('scans page forward and backward with filters', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (let id = 10; id < 15; id++) {
    await call('POST', '/v1/tables/users/put', { row: { region: 'us', id, n: id } });
  }
  const keys = (r: Reply): unknown[] =>
    (r.body.rows as { primaryKey: { id: number } }[]).map((x) => x.primaryKey.id);
  const p1 = await call('POST', '/v1/tables/users/scan', { start: { region: 'us' }, limit: 2 });
  assert.deepEqual(keys(p1), [10, 11]);
  assert.deepEqual(p1.body.next, { region: 'us', id: 12 });
  const p2 = await call('POST', '/v1/tables/users/scan', { start: p1.body.next, limit: 10 });
  assert.deepEqual(keys(p2), [12, 13, 14]);
  assert.equal(p2.body.next, null);
  const back = await call('POST', '/v1/tables/users/scan', {
    direction: 'backward',
    start: { region: 'us', id: 13 },
    end: { region: 'us', id: 10 },
  });
  assert.deepEqual(keys(back), [13, 12, 11], 'backward: start inclusive, end exclusive');
  const filtered = await call('POST', '/v1/tables/users/scan', {
    filter: {
      or: [
        { column: 'n', op: '=', value: 11 },
        { column: 'n', op: '>=', value: 14 },
      ],
    },
  });
  assert.deepEqual(keys(filtered), [11, 14]);
  const serializable = await call('POST', '/v1/tables/users/scan?consistency=serializable', {});
  assert.ok((serializable.body.rows as unknown[]).length >= 5);
});

test('bad requests get coded errors and change nothing', { timeout: TEST_TIMEOUT_MS }, async () => {
  const cases: [string, unknown, string][] = [
    ['/v1/tables/users/put', '{not json', 'INVALID_ARGUMENT'],
    ['/v1/tables/users/put', [], 'INVALID_ARGUMENT'],
    ['/v1/tables/users/put', { row: { region: 'eu' } }, 'INVALID_ARGUMENT'],
    ['/v1/tables/users/put', { row: { region: 'eu', id: 'one' } }, 'INVALID_ARGUMENT'],
    [
      '/v1/tables/users/put',
      { row: { region: 'eu', id: 1, x: { $int: 'nine' } } },
      'INVALID_ARGUMENT',
    ],
    [
      '/v1/tables/users/put',
      { row: { region: 'eu', id: 1, x: 'v'.repeat(3 << 20) } },
      'VALUE_TOO_LARGE',
    ],
    ['/v1/tables/users/update', { primaryKey: { region: 'eu', id: 1 } }, 'INVALID_ARGUMENT'],
    [
      '/v1/tables/users/update',
      { primaryKey: { region: 'eu', id: 2 }, increment: { n: 1.5 } },
      'INVALID_ARGUMENT',
    ],
    ['/v1/tables/users/scan', { limit: 0 }, 'INVALID_ARGUMENT'],
    ['/v1/tables/users/scan', { filter: { column: 'n', op: '~', value: 1 } }, 'INVALID_ARGUMENT'],
    ['/v1/tables/no-such!/get', { primaryKey: {} }, 'INVALID_ARGUMENT'],
    ['/v1/tables/ghost/get', { primaryKey: {} }, 'NOT_FOUND'],
  ];
  for (const [path, body, code] of cases) {
    const r = await call('POST', path, body);
    assert.equal(r.body.code, code, `${path} ${JSON.stringify(body).slice(0, 80)}`);
    assert.ok(r.status >= 400 && r.status < 500);
  }
  // A string increment target is refused at apply, and the row is untouched.
  await call('POST', '/v1/tables/users/put', { row: { region: 'eu', id: 9, s: 'text' } });
  const r = await call('POST', '/v1/tables/users/update', {
    primaryKey: { region: 'eu', id: 9 },
    increment: { s: 1 },
  });
  assert.equal(r.body.code, 'INVALID_ARGUMENT');
  const row = await call('POST', '/v1/tables/users/get', { primaryKey: { region: 'eu', id: 9 } });
  assert.deepEqual((row.body.row as { columns: unknown }).columns, {
    s: [(row.body.row as { columns: { s: unknown[] } }).columns.s[0]],
  });
  assert.equal(
    (row.body.row as { columns: { s: { value: string }[] } }).columns.s[0]!.value,
    'text',
  );
});

test('a table dropped and created again starts empty', { timeout: TEST_TIMEOUT_MS }, async () => {
  const t = { name: 'tmp', primaryKey: [{ name: 'k', type: 'string' }] };
  await call('POST', '/v1/tables', t);
  await call('POST', '/v1/tables/tmp/put', { row: { k: 'a', v: 1 } });
  assert.equal((await call('DELETE', '/v1/tables/tmp')).status, 200);
  assert.equal(
    (await call('POST', '/v1/tables/tmp/get', { primaryKey: { k: 'a' } })).body.code,
    'NOT_FOUND',
  );
  await call('POST', '/v1/tables', t);
  assert.equal(
    (await call('POST', '/v1/tables/tmp/get', { primaryKey: { k: 'a' } })).body.row,
    null,
  );
});

test('batches: per-row results, atomic all-or-none', { timeout: TEST_TIMEOUT_MS }, async () => {
  const w = await call('POST', '/v1/tables/batch-write', {
    writes: [
      { table: 'users', kind: 'put', row: { region: 'b', id: 1, v: 'one' } },
      {
        table: 'users',
        kind: 'put',
        row: { region: 'b', id: 1, v: 'dup' },
        condition: { expect: 'not_exist' },
      },
      { table: 'users', kind: 'update', primaryKey: { region: 'b', id: 2 }, increment: { n: 5 } },
    ],
  });
  assert.equal(w.status, 200);
  const results = w.body.results as Record<string, unknown>[];
  assert.deepEqual(results[0], { ok: true });
  assert.equal((results[1]!.error as { code: string }).code, 'CONDITION_FAILED');
  assert.deepEqual(results[2], { ok: true, increments: { n: 5 } });
  const atomic = await call('POST', '/v1/tables/batch-write', {
    atomic: true,
    writes: [
      { table: 'users', kind: 'put', row: { region: 'b', id: 3, v: 'three' } },
      {
        table: 'users',
        kind: 'delete',
        primaryKey: { region: 'b', id: 1 },
        condition: { expect: 'not_exist' },
      },
    ],
  });
  const ar = atomic.body.results as { error?: { code: string } }[];
  assert.equal(ar[1]!.error!.code, 'CONDITION_FAILED');
  assert.ok(ar[0]!.error !== undefined, 'the other write of a failed atomic batch is not applied');
  const g = await call('POST', '/v1/tables/batch-get', {
    gets: [
      { table: 'users', primaryKey: { region: 'b', id: 1 } },
      { table: 'users', primaryKey: { region: 'b', id: 3 } },
      { table: 'ghost', primaryKey: { k: 1 } },
    ],
  });
  const gr = g.body.results as {
    row?: { columns: { v: { value: string }[] } } | null;
    error?: { code: string };
  }[];
  assert.equal(gr[0]!.row!.columns.v[0]!.value, 'one', 'the row survived the failed atomic batch');
  assert.equal(gr[1]!.row, null, 'the atomic batch wrote nothing');
  assert.equal(gr[2]!.error!.code, 'NOT_FOUND');
  const tooMany = await call('POST', '/v1/tables/batch-get', { gets: [] });
  assert.equal(tooMany.body.code, 'INVALID_ARGUMENT');
});

test(
  'an auto-increment key column takes increasing values per partition',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const schema = {
      name: 'events',
      primaryKey: [
        { name: 'stream', type: 'string' },
        { name: 'seq', type: 'integer', autoIncrement: true },
      ],
    };
    assert.equal((await call('POST', '/v1/tables', schema)).status, 200);
    const seqs: unknown[] = [];
    for (const stream of ['a', 'a', 'b', 'a']) {
      const r = await call('POST', '/v1/tables/events/put', { row: { stream, body: 'x' } });
      seqs.push((r.body.primaryKey as { seq: number }).seq);
    }
    assert.deepEqual(seqs, [1, 2, 1, 3]);
    await call('POST', '/v1/tables/events/delete', { primaryKey: { stream: 'a', seq: 3 } });
    const next = await call('POST', '/v1/tables/events/put', { row: { stream: 'a', body: 'y' } });
    assert.deepEqual(next.body.primaryKey, { stream: 'a', seq: 4 }, 'values are never reused');
    const given = await call('POST', '/v1/tables/events/put', { row: { stream: 'a', seq: 9 } });
    assert.equal(given.body.code, 'INVALID_ARGUMENT');
  },
);

test(
  'old versions are garbage-collected in the background; reads never change',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await call('POST', '/v1/tables', {
      name: 'gc',
      primaryKey: [{ name: 'k', type: 'string' }],
      maxVersions: 1,
    });
    for (let i = 0; i < 5; i++) {
      await call('POST', '/v1/tables/gc/put', {
        row: { k: 'a', v: { value: i, version: Date.now() - 1000 + i } },
      });
    }
    const before = await call('POST', '/v1/tables/gc/get', {
      primaryKey: { k: 'a' },
      maxVersions: 10,
    });
    const removed = (): Promise<number> => gcRemovedRecords(endpoints);
    for (let i = 0; i < 100 && (await removed()) === 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok((await removed()) > 0, 'a leader collected the hidden versions');
    const after = await call('POST', '/v1/tables/gc/get', {
      primaryKey: { k: 'a' },
      maxVersions: 10,
    });
    assert.deepEqual(after.body, before.body);
    assert.equal((after.body.row as { columns: { v: unknown[] } }).columns.v.length, 1);
  },
);
