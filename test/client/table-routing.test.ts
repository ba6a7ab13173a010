/**
 * Routing of table rows by range, against a scripted two-range table
 * (no server): table `users` keyed by (user, seq) is split at partition key
 * "m", each range with its own leader. The fake server picks a request's
 * range as the real one does (table/routing.ts) and refuses a request at
 * the wrong node with NOT_LEADER, and ends a scan page at its range's edge
 * with the boundary as a partial `next` (`nextExclusive` backward).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TesseraClient } from '../../src/client/client.ts';
import { routeOf, type AnyRow, type RowOf, type ScanAllOptions } from '../../src/client/tables.ts';
import { TesseraError } from '../../src/core/errors.ts';
import { compareBytes, encodeBound, encodePrimaryKey } from '../../src/table/key-codec.ts';
import {
  compareRoutingKeys,
  partitionSplitKey,
  routingKeyAt,
  tableRowsPrefix,
} from '../../src/table/routing.ts';
import { INF_MAX, INF_MIN, type PkBound, type PkColumnType } from '../../src/table/types.ts';
import { pkBoundFromJson, pkValueToJson } from '../../src/table/values.ts';
import { json, scripted, type Routing, type Seen } from '../support/scripted-fetch.ts';

const fast = { initialMs: 1, maxMs: 2 };

const usersSchema = {
  name: 'users',
  primaryKey: [
    { name: 'user', type: 'string' },
    { name: 'seq', type: 'integer', autoIncrement: true },
  ],
  maxVersions: 1,
  ttlSeconds: null,
  maxVersionOffsetSeconds: 86400,
};
const COLUMNS: readonly { name: string; type: PkColumnType }[] = [
  { name: 'user', type: 'string' },
  { name: 'seq', type: 'integer' },
];
const TYPES = COLUMNS.map((c) => c.type);

/** The routing key of partition key `user` of table `users`: the split point. */
const at = (user: string): string => partitionSplitKey('users', 'string', user);

/** Two ranges split at "m", led by r2 and r3; `boundary` is the partition key at the split. */
const RANGES = [
  { id: 2, start: '', end: at('m'), leaderHttp: 'r2:1' },
  { id: 3, start: at('m'), end: null, leaderHttp: 'r3:1' },
];
const BOUNDARY = 'm';

/** The rows of the fake table, as (user, seq). */
const ROWS: readonly (readonly [string, bigint])[] = [
  ['a', 1n],
  ['a', 2n],
  ['c', 1n],
  ['m', 1n],
  ['n', 1n],
  ['n', 2n],
  ['x', 1n],
];

type Range = (typeof RANGES)[number];

const holds = (r: Range, key: string): boolean =>
  compareRoutingKeys(r.start, key) <= 0 && (r.end === null || compareRoutingKeys(key, r.end) < 0);
/** The range whose start < key <= end: it holds the keys just below `key`. */
const holdsBelow = (r: Range, key: string): boolean =>
  compareRoutingKeys(r.start, key) < 0 && (r.end === null || compareRoutingKeys(key, r.end) <= 0);

interface ScanBody {
  start?: Record<string, unknown>;
  startExclusive?: boolean;
  direction?: 'forward' | 'backward';
  limit?: number;
}

/** A scan bound's values from its JSON, in key order. */
function boundOf(j: Record<string, unknown> | undefined, fallback: PkBound): PkBound[] {
  if (j === undefined) return [fallback];
  const out: PkBound[] = [];
  for (const c of COLUMNS) {
    if (!(c.name in j)) break;
    out.push(pkBoundFromJson(c.type, j[c.name]));
  }
  return out;
}

/** The range the server serves a request of `path` with `body` from. */
function servingRange(path: string, body: unknown): Range {
  if (path.endsWith('/scan')) {
    const b = body as ScanBody;
    const backward = b.direction === 'backward';
    const key = routingKeyAt(
      'users',
      encodeBound(TYPES, boundOf(b.start, backward ? INF_MAX : INF_MIN)),
    );
    return RANGES.find((r) =>
      backward && b.startExclusive === true ? holdsBelow(r, key) : holds(r, key),
    )!;
  }
  const b = body as { row?: { user: string }; primaryKey?: { user: string } };
  const user = (b.row ?? b.primaryKey)!.user;
  return RANGES.find((r) => holds(r, at(user)))!;
}

const keyBytes = ([user, seq]: readonly [string, bigint]): Uint8Array =>
  encodePrimaryKey(TYPES, [user, seq]);
const rowJson = ([user, seq]: readonly [string, bigint]) => ({
  primaryKey: { user, seq: pkValueToJson(seq) },
  columns: {},
});

/** One page of a scan served by range `r`: its rows only, ending at its edge. */
function scanPage(r: Range, b: ScanBody): Record<string, unknown> {
  const backward = b.direction === 'backward';
  const exclusive = b.startExclusive === true;
  const bound = boundOf(b.start, backward ? INF_MAX : INF_MIN);
  const inRange = ROWS.filter((row) => holds(r, at(row[0])));
  const selected = inRange
    .filter((row) => {
      const k = keyBytes(row);
      if (!backward) {
        return compareBytes(k, encodeBound(TYPES, bound, exclusive ? 'upper' : 'lower')) >= 0;
      }
      return compareBytes(k, encodeBound(TYPES, bound, exclusive ? 'lower' : 'upper')) < 0;
    })
    .sort((x, y) => compareBytes(keyBytes(x), keyBytes(y)) * (backward ? -1 : 1));
  const limit = b.limit ?? 100;
  const rows = selected.slice(0, limit);
  if (selected.length > limit) {
    return { rows: rows.map(rowJson), next: rowJson(selected[limit]!).primaryKey };
  }
  if (!backward && r.end !== null) return { rows: rows.map(rowJson), next: { user: BOUNDARY } };
  if (backward && r.start !== '') {
    return { rows: rows.map(rowJson), next: { user: BOUNDARY }, nextExclusive: true };
  }
  return { rows: rows.map(rowJson), next: null };
}

/**
 * A client against the fake two-range server. `misrouted` counts requests
 * that reached a node not leading their range (answered NOT_LEADER).
 */
function twoRanges(
  routing: Routing = {},
  answer: (s: Seen, r: Range) => Response = (s, r) =>
    new URL(s.url).pathname.endsWith('/scan')
      ? json(200, scanPage(r, s.body as ScanBody))
      : new URL(s.url).pathname.endsWith('/get')
        ? json(200, { row: null })
        : json(200, { ok: true }),
): { c: TesseraClient; seen: Seen[]; describes: string[]; misrouted: () => number } {
  let misrouted = 0;
  const { fetch, seen, describes } = scripted(
    (s) => {
      const path = new URL(s.url).pathname;
      if (!path.startsWith('/v1/tables/users/')) return answer(s, RANGES[0]!);
      const r = servingRange(path, s.body);
      if (new URL(s.url).host !== r.leaderHttp) {
        misrouted += 1;
        return json(421, {
          code: 'NOT_LEADER',
          message: 'not the leader',
          retryable: 'yes',
          range: r.id,
          leaderHint: { id: r.id, http: r.leaderHttp },
        });
      }
      return answer(s, r);
    },
    { ranges: RANGES, tables: { users: usersSchema }, ...routing },
  );
  const c = new TesseraClient({ endpoints: ['a:1'], fetch, retries: 3, backoff: fast });
  return { c, seen, describes, misrouted: () => misrouted };
}

const hostOf = (s: Seen): string => new URL(s.url).host;

interface User {
  user: string;
  seq: bigint;
  name: string;
}

const keysOf = (rows: readonly RowOf<AnyRow, never>[]): string[] =>
  rows.map((r) => `${String(r.primaryKey.user)}${String(r.primaryKey.seq)}`);

async function collect(it: AsyncIterable<RowOf<AnyRow, never>>): Promise<string[]> {
  const rows: RowOf<AnyRow, never>[] = [];
  for await (const row of it) rows.push(row);
  return keysOf(rows);
}

describe('tables: routing by range', () => {
  it('routeOf computes the routing key the server routes by', () => {
    const row = (primaryKey: Record<string, unknown>) => ({ kind: 'row' as const, primaryKey });
    const scan = (
      start: Record<string, unknown> | undefined,
      backward = false,
      exclusive = false,
    ) => ({ kind: 'scan' as const, start, backward, exclusive });
    // A row: its partition key alone, so a put without its auto-increment column routes too.
    assert.deepEqual(routeOf('users', COLUMNS, row({ user: 'c', seq: 5n })), {
      key: at('c'),
      below: false,
    });
    assert.deepEqual(routeOf('users', COLUMNS, row({ user: 'c', name: 'x' })), {
      key: at('c'),
      below: false,
    });
    // A scan: its start bound's encoding; the table's first or last position without one.
    assert.deepEqual(routeOf('users', COLUMNS, scan(undefined)), {
      key: tableRowsPrefix('users'),
      below: false,
    });
    assert.deepEqual(routeOf('users', COLUMNS, scan(undefined, true)), {
      key: `${tableRowsPrefix('users')}ff`,
      below: false,
    });
    assert.deepEqual(routeOf('users', COLUMNS, scan({ user: 'c', seq: 1n }, true, true)), {
      key: routingKeyAt('users', encodePrimaryKey(TYPES, ['c', 1n])),
      below: true,
    });
    assert.deepEqual(routeOf('users', COLUMNS, scan({ user: 'm' }, true, true)), {
      key: at('m'),
      below: true,
    });
    // Exclusivity moves only a backward scan's range.
    assert.deepEqual(routeOf('users', COLUMNS, scan({ user: 'm', seq: INF_MAX }, false, true)), {
      key: routingKeyAt('users', encodeBound(TYPES, ['m', INF_MAX])),
      below: false,
    });
    // What the server would refuse routes nowhere in particular.
    assert.equal(routeOf('users', COLUMNS, row({ seq: 1n })), null);
    assert.equal(routeOf('users', COLUMNS, row({ user: 1n })), null);
    assert.equal(routeOf('users', COLUMNS, scan({ seq: 1n })), null);
    assert.equal(routeOf('users', COLUMNS, scan({})), null);
  });

  it('sends each row request to the leader of the range holding its partition key', async () => {
    const { c, seen, describes, misrouted } = twoRanges();
    const users = c.table<User, 'user' | 'seq'>('users');
    await users.getRow({ user: 'c', seq: 1n });
    // No seq: the auto-increment column is the range's to assign.
    await c.table('users').putRow({ user: 'x', name: 'xena' });
    await users.updateRow({ user: 'm', seq: 1n }, { put: { name: 'mo' } });
    await users.deleteRow({ user: 'lzz', seq: 1n });
    await users.getRow({ user: 'zz', seq: 1n }, { consistency: 'serializable' });
    assert.deepEqual(seen.map(hostOf), ['r2:1', 'r3:1', 'r3:1', 'r2:1', 'r3:1']);
    assert.equal(misrouted(), 0);
    assert.deepEqual(describes, ['users'], 'the schema is read once and cached');
    assert.equal(c.leaderEndpoint(at('c')), 'http://r2:1');
    assert.equal(c.leaderEndpoint(at('x')), 'http://r3:1');
  });

  it('sends a scan to the range of its start; backward exclusive to the range below it', async () => {
    const { c, seen, misrouted } = twoRanges();
    const users = c.table<User, 'user' | 'seq'>('users');
    const cases: [Parameters<typeof users.scan>[0], string][] = [
      [{}, 'r2:1'],
      [{ direction: 'backward' }, 'r3:1'],
      [{ start: { user: 'm' } }, 'r3:1'],
      [{ start: { user: 'l', seq: INF_MAX } }, 'r2:1'],
      [{ start: { user: 'm' }, direction: 'backward' }, 'r3:1'],
      [{ start: { user: 'm' }, direction: 'backward', startExclusive: true }, 'r2:1'],
      [{ start: { user: 'm', seq: 1n }, direction: 'backward', startExclusive: true }, 'r3:1'],
      [{ start: { user: 'm' }, startExclusive: true }, 'r3:1'],
    ];
    for (const [opts] of cases) await users.scan({ ...opts, limit: 1 });
    assert.deepEqual(
      seen.map(hostOf),
      cases.map(([, host]) => host),
    );
    assert.equal(misrouted(), 0);
    assert.deepEqual(seen[5]!.body, {
      start: { user: 'm' },
      startExclusive: true,
      limit: 1,
      direction: 'backward',
    });
    assert.equal((seen[4]!.body as ScanBody).startExclusive, undefined, 'sent only when true');
  });

  it('scanAll stitches a forward scan across ranges at partial next keys', async () => {
    const { c, seen, misrouted } = twoRanges();
    const users = c.table('users');
    assert.deepEqual(await collect(users.scanAll({ limit: 2 })), [
      'a1',
      'a2',
      'c1',
      'm1',
      'n1',
      'n2',
      'x1',
    ]);
    assert.deepEqual(
      seen.map((s) => [hostOf(s), s.body]),
      [
        ['r2:1', { limit: 2 }],
        ['r2:1', { start: { user: 'c', seq: 1 }, limit: 2 }],
        ['r3:1', { start: { user: 'm' }, limit: 2 }],
        ['r3:1', { start: { user: 'n', seq: 2 }, limit: 2 }],
      ],
    );
    assert.equal(misrouted(), 0);
  });

  it('scanAll stitches a backward scan across ranges, carrying nextExclusive', async () => {
    const { c, seen, misrouted } = twoRanges();
    const users = c.table('users');
    assert.deepEqual(await collect(users.scanAll({ direction: 'backward', limit: 2 })), [
      'x1',
      'n2',
      'n1',
      'm1',
      'c1',
      'a2',
      'a1',
    ]);
    assert.deepEqual(
      seen.map((s) => [hostOf(s), s.body]),
      [
        ['r3:1', { limit: 2, direction: 'backward' }],
        ['r3:1', { start: { user: 'n', seq: 1 }, limit: 2, direction: 'backward' }],
        ['r2:1', { start: { user: 'm' }, startExclusive: true, limit: 2, direction: 'backward' }],
        ['r2:1', { start: { user: 'a', seq: 1 }, limit: 2, direction: 'backward' }],
      ],
    );
    assert.equal(misrouted(), 0);
  });

  it('one scan page ends at the range edge with nextExclusive; scanAll moves on from there', async () => {
    const { c, seen } = twoRanges();
    const users = c.table('users');
    const page = await users.scan({ direction: 'backward', start: { user: 'm' } });
    // Rows <= (m, INF_MIN) lie below the boundary: the range at "m" has none of them.
    assert.deepEqual(page.rows, []);
    assert.deepEqual(page.next, { user: 'm' });
    assert.equal(page.nextExclusive, true);
    const forward = await users.scan({ limit: 100 });
    assert.deepEqual(forward.next, { user: 'm' });
    assert.equal(forward.nextExclusive, false);
    // Same start, now exclusive: that advances.
    assert.deepEqual(
      await collect(users.scanAll({ direction: 'backward', start: { user: 'm' } })),
      ['c1', 'a2', 'a1'],
    );
    assert.deepEqual(seen.slice(2).map(hostOf), ['r3:1', 'r2:1']);
  });

  it('scanAll refuses a page that does not advance, exclusivity included', async () => {
    const stuck = (next: unknown, nextExclusive?: boolean) =>
      twoRanges({}, () =>
        json(200, { rows: [], next, ...(nextExclusive ? { nextExclusive } : {}) }),
      );
    const isInternal = (e: unknown) => e instanceof TesseraError && e.code === 'INTERNAL';
    const drain = async (c: TesseraClient, opts: ScanAllOptions<AnyRow, never>) => {
      for await (const _ of c.table('users').scanAll(opts)) void _;
    };
    // The same exclusive start again.
    const a = stuck({ user: 'm' }, true);
    await assert.rejects(
      drain(a.c, { direction: 'backward', start: { user: 'm' }, startExclusive: true }),
      isInternal,
    );
    assert.equal(a.seen.length, 1);
    // Exclusive back to inclusive at the same key moves backwards.
    const b = stuck({ user: 'm' });
    await assert.rejects(drain(b.c, { start: { user: 'm' }, startExclusive: true }), isInternal);
    assert.equal(b.seen.length, 1);
    // The same inclusive start, columns in another order.
    const d = stuck({ user: 'c', seq: 1 });
    await assert.rejects(drain(d.c, { start: { seq: 1n, user: 'c' } }), isInternal);
    assert.equal(d.seen.length, 1);
  });

  it('RESOURCE_EXHAUSTED after pagesMax names where to continue, exclusivity included', async () => {
    const { c } = twoRanges();
    await assert.rejects(
      (async () => {
        for await (const _ of c
          .table('users')
          .scanAll({ direction: 'backward', limit: 2, pagesMax: 2 }))
          void _;
      })(),
      (e: unknown) =>
        e instanceof TesseraError &&
        e.code === 'RESOURCE_EXHAUSTED' &&
        JSON.stringify(e.details?.next) === '{"user":"m"}' &&
        e.details?.nextExclusive === true,
    );
  });

  it('batches group rows by range, each group to its leader, results in input order', async () => {
    const { c, seen, misrouted } = twoRanges({ tables: { users: usersSchema } }, (s) => {
      const path = new URL(s.url).pathname;
      if (path === '/v1/tables/batch-get') {
        const gets = (s.body as { gets: { table: string; primaryKey: { user: string } }[] }).gets;
        return json(200, {
          results: gets.map((g) =>
            g.table === 'users'
              ? { row: { primaryKey: { user: g.primaryKey.user, seq: 1 }, columns: {} } }
              : { error: { code: 'NOT_FOUND', message: 'no table' } },
          ),
        });
      }
      const writes = (
        s.body as {
          writes: { table: string; row?: { user: string }; primaryKey?: { user: string } }[];
        }
      ).writes;
      // Each result names its row: n = the char code of its partition key.
      return json(200, {
        results: writes.map((w) => ({
          ok: true,
          increments: { n: (w.row ?? w.primaryKey)!.user.charCodeAt(0) },
        })),
      });
    });
    // The fake server checks leaders of single-row requests only; batches are checked by host here.
    const results = await c.batchWriteRows([
      { table: 'users', kind: 'put', row: { user: 'a', name: 'x' } },
      { table: 'users', kind: 'put', row: { user: 'x', name: 'x' } },
      { table: 'users', kind: 'delete', primaryKey: { user: 'c', seq: 1n } },
      { table: 'other', kind: 'put', row: { user: 'q' } },
      {
        table: 'users',
        kind: 'update',
        primaryKey: { user: 'n', seq: 1n },
        update: { put: { v: 1n } },
      },
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? r.value.n : r.error.code)),
      [...'axcqn'].map((u) => BigInt(u.charCodeAt(0))),
    );
    assert.equal(misrouted(), 0);
    const batches = seen.map((s) => [
      hostOf(s),
      (
        s.body as { writes: { row?: { user: string }; primaryKey?: { user: string } }[] }
      ).writes.map((w) => (w.row ?? w.primaryKey)!.user),
    ]);
    assert.deepEqual(
      batches.sort(),
      [
        ['a:1', ['q']], // no schema for "other": the table's own leader cache
        ['r2:1', ['a', 'c']],
        ['r3:1', ['x', 'n']],
      ].sort(),
    );
    assert.ok(
      seen.every((s) => s.seq !== undefined),
      'each group is a write with a session',
    );
    assert.equal(new Set(seen.map((s) => `${s.client}/${s.seq}`)).size, 3, 'a session each');
    const gets = await c.batchGetRows([
      { table: 'users', primaryKey: { user: 'x', seq: 1n } },
      { table: 'users', primaryKey: { user: 'b', seq: 1n } },
      { table: 'users', primaryKey: { user: 'y', seq: 1n } },
    ]);
    assert.deepEqual(
      gets.map((g) => (g.ok ? g.value?.primaryKey.user : g.error.code)),
      ['x', 'b', 'y'],
    );
    assert.deepEqual(seen.slice(3).map(hostOf).sort(), ['r2:1', 'r3:1']);
  });

  it('reads a schema once, drops it when an answer says the table changed', async () => {
    let gone = false;
    const { c, seen, describes } = twoRanges({}, (s) => {
      const path = new URL(s.url).pathname;
      if (gone) {
        const error = { code: 'NOT_FOUND', message: 'no table users', retryable: 'no' };
        return path === '/v1/tables/batch-get'
          ? json(200, { results: [{ error }] })
          : json(404, error);
      }
      return path === '/v1/tables/batch-get'
        ? json(200, { results: [{ row: null }] })
        : json(200, { row: null });
    });
    const users = c.table('users');
    await users.getRow({ user: 'c', seq: 1n });
    await users.getRow({ user: 'x', seq: 1n });
    await c.batchGetRows([{ table: 'users', primaryKey: { user: 'c', seq: 1n } }]);
    assert.deepEqual(describes, ['users']);
    gone = true;
    await assert.rejects(
      users.getRow({ user: 'c', seq: 1n }),
      (e: unknown) => e instanceof TesseraError && e.code === 'NOT_FOUND',
    );
    gone = false;
    await users.getRow({ user: 'c', seq: 1n });
    assert.deepEqual(describes, ['users', 'users'], 'read again after NOT_FOUND');
    gone = true;
    const [r] = await c.batchGetRows([{ table: 'users', primaryKey: { user: 'x', seq: 1n } }]);
    assert.ok(r !== undefined && !r.ok && r.error.code === 'NOT_FOUND');
    gone = false;
    await users.getRow({ user: 'x', seq: 1n });
    assert.deepEqual(describes, ['users', 'users', 'users'], 'and after a per-row NOT_FOUND');
    assert.deepEqual(seen.map(hostOf), ['r2:1', 'r3:1', 'r2:1', 'r2:1', 'r2:1', 'r3:1', 'r3:1']);
  });

  it("without a schema, a table's rows go through the table's own leader cache", async () => {
    const { c, seen, describes } = twoRanges({}, () => json(200, { ok: true }));
    const other = c.table('other');
    await other.putRow({ k: 'a' });
    await other.deleteRow({ k: 'z' });
    assert.deepEqual(seen.map(hostOf), ['a:1', 'a:1']);
    assert.deepEqual(describes, ['other'], 'a failed read is not repeated at once');
    assert.equal(c.tableLeaderEndpoint('other'), 'http://a:1');
  });

  it('caches the key columns of a bounded number of tables', async () => {
    const anyTable = new Proxy(
      {},
      { get: (_target, name) => ({ ...usersSchema, name: String(name) }) },
    );
    const { c, describes } = twoRanges({ tables: anyTable }, () => json(200, { row: null }));
    const tables = 1025;
    for (let i = 0; i < tables; i++) await c.table(`t${i}`).getRow({ user: 'c', seq: 1n });
    assert.equal(describes.length, tables);
    await c.table(`t${tables - 1}`).getRow({ user: 'c', seq: 1n });
    assert.equal(describes.length, tables, 'the newest is still cached');
    await c.table('t0').getRow({ user: 'c', seq: 1n });
    assert.equal(describes.length, tables + 1, 'the oldest was dropped beyond 1024 tables');
  });
});
