/**
 * The tables client against a scripted fetch (no server): each method sends
 * the method, path and body of the tables HTTP API, answers are decoded to
 * the model's types, scanAll stitches pages, a failed condition is final,
 * and writes carry exactly-once session headers that their retries reuse.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TesseraClient } from '../../src/client/client.ts';
import { TesseraError } from '../../src/core/errors.ts';
import { INF_MAX, INF_MIN } from '../../src/table/types.ts';
import { json, scripted, type Script, type Seen } from '../support/scripted-fetch.ts';

const fast = { initialMs: 1, maxMs: 2 };

const usersSchema = {
  name: 'users',
  primaryKey: [
    { name: 'region', type: 'string' },
    { name: 'id', type: 'integer' },
  ],
  maxVersions: 3,
  ttlSeconds: null,
  maxVersionOffsetSeconds: 86400,
};

/** The rows of the tests: `users` keyed by (region, id). */
interface User {
  region: string;
  id: bigint;
  name: string;
  score: number;
  visits: bigint;
  avatar: Uint8Array;
}

function client(script: Script, retries = 3): { c: TesseraClient; seen: Seen[] } {
  const { fetch, seen } = scripted(script);
  return { c: new TesseraClient({ endpoints: ['a:1'], fetch, retries, backoff: fast }), seen };
}

const target = (s: Seen): string =>
  `${s.method} ${new URL(s.url).pathname}${new URL(s.url).search}`;

describe('tables: the catalog', () => {
  it('create, describe, list, alter and drop send the contract requests', async () => {
    const { c, seen } = client((s) => {
      if (s.method === 'GET' && s.url.endsWith('/v1/tables'))
        return json(200, { tables: [usersSchema] });
      if (s.method === 'DELETE') return json(200, { ok: true });
      if (s.method === 'PATCH') return json(200, { table: { ...usersSchema, maxVersions: 5 } });
      return json(200, { table: usersSchema });
    });
    const created = await c.createTable({
      name: 'users',
      primaryKey: [
        { name: 'region', type: 'string' },
        { name: 'id', type: 'integer' },
      ],
      maxVersions: 3,
    });
    assert.deepEqual(created, usersSchema);
    assert.deepEqual(await c.describeTable('users'), usersSchema);
    assert.deepEqual(await c.listTables(), [usersSchema]);
    assert.equal((await c.alterTable('users', { maxVersions: 5 })).maxVersions, 5);
    await c.dropTable('users');
    assert.deepEqual(seen.map(target), [
      'POST /v1/tables',
      'GET /v1/tables/users',
      'GET /v1/tables',
      'PATCH /v1/tables/users',
      'DELETE /v1/tables/users',
    ]);
    assert.deepEqual(seen[0]!.body, usersSchema);
    assert.deepEqual(seen[3]!.body, { maxVersions: 5 });
    // Catalog writes carry sessions; reads do not.
    assert.deepEqual(
      seen.map((s) => s.seq),
      ['1', undefined, undefined, '2', '3'],
    );
  });

  it('refuses a bad schema or change locally and surfaces server errors by code', async () => {
    const { c, seen } = client(() =>
      json(409, { code: 'ALREADY_EXISTS', message: 'table users exists', retryable: 'no' }),
    );
    await assert.rejects(
      c.createTable({ name: 'users', primaryKey: [] }),
      (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_SCHEMA',
    );
    await assert.rejects(
      c.alterTable('users', { primaryKey: [] } as never),
      (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_SCHEMA',
    );
    assert.throws(
      () => c.table('no such name'),
      (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT',
    );
    assert.equal(seen.length, 0);
    await assert.rejects(
      c.createTable(usersSchema as never),
      (e: unknown) => e instanceof TesseraError && e.code === 'ALREADY_EXISTS',
    );
    assert.equal(seen.length, 1, 'not retried');
  });
});

describe('tables: rows', () => {
  it('putRow encodes values and the condition, with session headers', async () => {
    const { c, seen } = client(() => json(200, { ok: true }));
    const users = c.table<User, 'region' | 'id'>('users');
    await users.putRow(
      {
        region: 'eu',
        id: 9007199254740993n,
        name: 'ann',
        score: 1,
        visits: 3n,
        avatar: Uint8Array.of(0, 1, 255),
      },
      { condition: { rowExistence: 'EXPECT_NOT_EXIST' } },
    );
    await users.putRow({ region: 'eu', id: 1n, name: { value: 'bo', version: 1_700_000_000_000 } });
    assert.deepEqual(seen.map(target), ['POST /v1/tables/users/put', 'POST /v1/tables/users/put']);
    assert.deepEqual(seen[0]!.body, {
      row: {
        region: 'eu',
        id: { $int: '9007199254740993' },
        name: 'ann',
        score: { $double: 1 },
        visits: 3,
        avatar: { $binary: 'AAH/' },
      },
      condition: { expect: 'not_exist' },
    });
    assert.deepEqual(seen[1]!.body, {
      row: { region: 'eu', id: 1, name: { value: 'bo', version: 1_700_000_000_000 } },
    });
    assert.equal(seen[0]!.client, String(c.clientId));
    assert.deepEqual([seen[0]!.seq, seen[1]!.seq], ['1', '2']);
  });

  it('getRow sends its options and decodes values to bigint, number and Uint8Array', async () => {
    const { c, seen } = client((s) =>
      (s.body as { primaryKey: { id: number } }).primaryKey.id === 2
        ? json(200, { row: null })
        : json(200, {
            row: {
              primaryKey: { region: 'eu', id: 1 },
              columns: {
                name: [
                  { value: 'ann', version: 3000 },
                  { value: 'an', version: 2000 },
                ],
                score: [{ value: { $double: 2 }, version: 3000 }],
                visits: [{ value: { $int: '9007199254740993' }, version: 3000 }],
                avatar: [{ value: { $binary: 'AAH/' }, version: 3000 }],
              },
            },
          }),
    );
    const users = c.table<User, 'region' | 'id'>('users');
    const row = await users.getRow(
      { region: 'eu', id: 1n },
      {
        columns: ['name', 'score', 'visits', 'avatar'],
        maxVersions: 2,
        timeRange: { start: 1000, end: 4000 },
        at: 3500,
        consistency: 'serializable',
      },
    );
    assert.deepEqual(seen[0]!.body, {
      primaryKey: { region: 'eu', id: 1 },
      columns: ['name', 'score', 'visits', 'avatar'],
      maxVersions: 2,
      timeRange: { start: 1000, end: 4000 },
      at: 3500,
    });
    assert.equal(target(seen[0]!), 'POST /v1/tables/users/get?consistency=serializable');
    assert.equal(seen[0]!.seq, undefined, 'reads carry no session');
    assert.ok(row !== null);
    const id: bigint = row.primaryKey.id;
    assert.equal(id, 1n);
    assert.deepEqual(row.columns.name, [
      { value: 'ann', version: 3000 },
      { value: 'an', version: 2000 },
    ]);
    assert.deepEqual(row.columns.score, [{ value: 2, version: 3000 }]);
    assert.equal(typeof row.columns.score![0]!.value, 'number');
    assert.deepEqual(row.columns.visits, [{ value: 9007199254740993n, version: 3000 }]);
    assert.deepEqual(row.columns.avatar![0]!.value, Uint8Array.of(0, 1, 255));
    assert.equal(await users.getRow({ region: 'eu', id: 2n }), null);
    assert.equal(target(seen[1]!), 'POST /v1/tables/users/get');
    assert.deepEqual(seen[1]!.body, { primaryKey: { region: 'eu', id: 2 } });
  });

  it('updateRow sends every part of the change and decodes the increments', async () => {
    const { c, seen } = client(() => json(200, { ok: true, increments: { visits: 4 } }));
    const users = c.table<User, 'region' | 'id'>('users');
    const inc = await users.updateRow(
      { region: 'eu', id: 1n },
      {
        put: { name: 'ann', score: 1.5 },
        delete: ['avatar'],
        deleteVersions: [{ column: 'name', version: 2000 }],
        increment: { visits: 1n },
      },
      {
        condition: {
          rowExistence: 'EXPECT_EXIST',
          columnCondition: { kind: 'relation', column: 'visits', op: '<', value: 10n },
        },
      },
    );
    assert.deepEqual(inc, { visits: 4n });
    assert.equal(target(seen[0]!), 'POST /v1/tables/users/update');
    assert.deepEqual(seen[0]!.body, {
      primaryKey: { region: 'eu', id: 1 },
      put: { name: 'ann', score: 1.5 },
      delete: ['avatar'],
      deleteVersions: [{ column: 'name', version: 2000 }],
      increment: { visits: 1 },
      condition: { expect: 'exist', if: { column: 'visits', op: '<', value: 10 } },
    });
    assert.ok(seen[0]!.seq !== undefined);
  });

  it('deleteRow sends the key and condition', async () => {
    const { c, seen } = client(() => json(200, { ok: true }));
    await c
      .table<User, 'region' | 'id'>('users')
      .deleteRow({ region: 'eu', id: 1n }, { condition: { rowExistence: 'EXPECT_EXIST' } });
    assert.equal(target(seen[0]!), 'POST /v1/tables/users/delete');
    assert.deepEqual(seen[0]!.body, {
      primaryKey: { region: 'eu', id: 1 },
      condition: { expect: 'exist' },
    });
    assert.ok(seen[0]!.seq !== undefined);
  });

  it('scan sends bounds, limit, direction and filter, and decodes next', async () => {
    const { c, seen } = client(() =>
      json(200, {
        rows: [{ primaryKey: { region: 'eu', id: 5 }, columns: {} }],
        next: { region: 'eu', id: 4 },
      }),
    );
    const page = await c.table<User, 'region' | 'id'>('users').scan({
      start: { region: 'eu', id: INF_MAX },
      end: { region: 'eu', id: INF_MIN },
      limit: 1,
      direction: 'backward',
      maxVersions: 2,
      columns: ['name'],
      filter: { kind: 'relation', column: 'name', op: '!=', value: 'x', passIfMissing: false },
    });
    assert.equal(target(seen[0]!), 'POST /v1/tables/users/scan');
    assert.deepEqual(seen[0]!.body, {
      start: { region: 'eu', id: { $inf: 'max' } },
      end: { region: 'eu', id: { $inf: 'min' } },
      limit: 1,
      direction: 'backward',
      columns: ['name'],
      maxVersions: 2,
      filter: { column: 'name', op: '!=', value: 'x', passIfMissing: false },
    });
    assert.deepEqual(page.rows, [{ primaryKey: { region: 'eu', id: 5n }, columns: {} }]);
    assert.deepEqual(page.next, { region: 'eu', id: 4n });
    await assert.rejects(
      c.table('users').scan({ limit: 1001 }),
      (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT',
    );
  });

  it('scanAll follows next across pages and stops at null', async () => {
    const pages = [
      { rows: [1, 2], next: 3 },
      { rows: [], next: 3.5 }, // a page may be empty and still have a next one
      { rows: [3], next: null },
    ];
    let i = 0;
    const { c, seen } = client(() => {
      const p = pages[i++]!;
      return json(200, {
        rows: p.rows.map((id) => ({
          primaryKey: { id },
          columns: { n: [{ value: id, version: 1 }] },
        })),
        next: p.next === null ? null : { id: p.next === 3.5 ? 4 : p.next },
      });
    });
    const t = c.table<{ id: bigint; n: bigint }, 'id'>('t');
    const ids: bigint[] = [];
    for await (const row of t.scanAll({ start: { id: 0n }, limit: 2 })) ids.push(row.primaryKey.id);
    assert.deepEqual(ids, [1n, 2n, 3n]);
    assert.deepEqual(
      seen.map((s) => s.body),
      [
        { start: { id: 0 }, limit: 2 },
        { start: { id: 3 }, limit: 2 },
        { start: { id: 4 }, limit: 2 },
      ],
    );
  });

  it('scanAll is bounded by pagesMax and refuses a next that does not advance', async () => {
    const { c } = client((s) =>
      json(200, { rows: [], next: (s.body as { start?: unknown }).start ?? { id: 1 } }),
    );
    const t = c.table('t');
    await assert.rejects(
      (async () => {
        for await (const _ of t.scanAll({ pagesMax: 3 })) void _;
      })(),
      (e: unknown) => e instanceof TesseraError && e.code === 'INTERNAL',
    );
    let n = 0;
    const { c: c2, seen } = client(() => json(200, { rows: [], next: { id: ++n } }));
    await assert.rejects(
      (async () => {
        for await (const _ of c2.table('t').scanAll({ pagesMax: 3 })) void _;
      })(),
      (e: unknown) =>
        e instanceof TesseraError &&
        e.code === 'RESOURCE_EXHAUSTED' &&
        JSON.stringify(e.details?.next) === '{"id":3}',
    );
    assert.equal(seen.length, 3);
  });

  it('a failed condition is CONDITION_FAILED and is not retried', async () => {
    const { c, seen } = client(() =>
      json(412, { code: 'CONDITION_FAILED', message: 'the row exists', retryable: 'no' }),
    );
    await assert.rejects(
      c
        .table('users')
        .putRow(
          { region: 'eu', id: 1n, name: 'x' },
          { condition: { rowExistence: 'EXPECT_NOT_EXIST' } },
        ),
      (e: unknown) =>
        e instanceof TesseraError &&
        e.code === 'CONDITION_FAILED' &&
        e.message === 'the row exists',
    );
    assert.equal(seen.length, 1);
  });

  it('a retried write reuses its session; the next write takes the next seq', async () => {
    const answers = [
      json(504, { code: 'OUTCOME_UNKNOWN', message: 'x', retryable: 'with-idempotency-key' }),
      json(200, { ok: true, increments: { n: 1 } }),
      json(200, { ok: true }),
    ];
    const { c, seen } = client(() => answers.shift()!);
    const t = c.table<{ id: bigint; n: bigint }, 'id'>('t');
    assert.deepEqual(await t.updateRow({ id: 1n }, { increment: { n: 1n } }), { n: 1n });
    await t.deleteRow({ id: 1n });
    assert.deepEqual(
      seen.map((s) => [s.client, s.seq]),
      [
        [String(c.clientId), '1'],
        [String(c.clientId), '1'],
        [String(c.clientId), '2'],
      ],
    );
  });

  it('follows NOT_LEADER hints and caches the leader per table', async () => {
    const { c, seen } = client((s) =>
      s.url.startsWith('http://a:1')
        ? json(421, {
            code: 'NOT_LEADER',
            message: 'no',
            retryable: 'yes',
            leaderHint: { id: 2, http: 'b:2' },
          })
        : json(200, { ok: true }),
    );
    await c.table('t').putRow({ id: 1n });
    await c.table('t').deleteRow({ id: 1n });
    assert.deepEqual(
      seen.map((s) => new URL(s.url).host),
      ['a:1', 'b:2', 'b:2'],
    );
    assert.equal(c.tableLeaderEndpoint('t'), 'http://b:2');
    assert.equal(c.tableLeaderEndpoint('other'), null);
    assert.deepEqual([seen[0]!.seq, seen[1]!.seq], ['1', '1']);
  });

  it('types rows from the caller-supplied row type', async () => {
    const { c } = client(() =>
      json(200, {
        row: { primaryKey: { id: 1 }, columns: { name: [{ value: 'a', version: 1 }] } },
      }),
    );
    // Without Key: any column may be given as key.
    const loose = await c.table<{ id: bigint; name: string }>('users').getRow({ id: 1n });
    const name: string | undefined = loose?.columns.name?.[0]?.value;
    assert.equal(name, 'a');
    const strict = c.table<{ id: bigint; name: string }, 'id'>('users');
    // @ts-expect-error the key needs every key column
    await strict.getRow({}).catch(() => null);
    // @ts-expect-error integers are bigint
    await strict.putRow({ id: 1, name: 'a' }).catch(() => null);
    // @ts-expect-error increments apply to integer columns only
    await strict.updateRow({ id: 1n }, { increment: { name: 1n } }).catch(() => null);
  });
});

describe('tables: batches', () => {
  it('batchWriteRows sends one request per table, with a session each, and keeps the order', async () => {
    const { c, seen } = client((s) => {
      const writes = (s.body as { writes: { kind: string; table: string }[] }).writes;
      return json(200, {
        results: writes.map((w) =>
          w.table === 'b'
            ? { error: { code: 'CONDITION_FAILED', message: 'no' } }
            : w.kind === 'update'
              ? { ok: true, increments: { n: 3 } }
              : { ok: true },
        ),
      });
    });
    const r = await c.batchWriteRows([
      { table: 'a', kind: 'put', row: { k: 'x', v: 1n } },
      { table: 'b', kind: 'delete', primaryKey: { k: 'y' } },
      { table: 'a', kind: 'update', primaryKey: { k: 'z' }, update: { increment: { n: 1n } } },
    ]);
    assert.deepEqual(
      r.map((x) => (x.ok ? x.value : x.error.code)),
      [{}, 'CONDITION_FAILED', { n: 3n }],
    );
    assert.equal(seen.length, 2, 'one request per table');
    assert.ok(seen.every((s) => target(s) === 'POST /v1/tables/batch-write'));
    assert.ok(seen.every((s) => s.client !== undefined && s.seq !== undefined));
    const bodyA = seen.find(
      (s) => (s.body as { writes: { table: string }[] }).writes[0]!.table === 'a',
    )!;
    assert.deepEqual((bodyA.body as { writes: unknown[] }).writes, [
      { table: 'a', kind: 'put', row: { k: 'x', v: 1 } },
      { table: 'a', kind: 'update', primaryKey: { k: 'z' }, increment: { n: 1 } },
    ]);
  });

  it('an atomic batch is one request; batchGetRows decodes rows and per-row errors', async () => {
    const { c, seen } = client((s) =>
      s.url.includes('batch-get')
        ? json(200, {
            results: (s.body as { gets: { table: string; primaryKey: { k: string } }[] }).gets.map(
              (g) =>
                g.table === 'c'
                  ? { error: { code: 'NOT_FOUND', message: 'no table' } }
                  : g.primaryKey.k === 'x'
                    ? {
                        row: { primaryKey: { k: 'x' }, columns: { v: [{ value: 7, version: 5 }] } },
                      }
                    : { row: null },
            ),
          })
        : json(200, { results: [{ ok: true }, { ok: true }] }),
    );
    await c.batchWriteRows(
      [
        { table: 'a', kind: 'put', row: { k: 'x' } },
        { table: 'b', kind: 'put', row: { k: 'y' } },
      ],
      { atomic: true },
    );
    assert.equal(seen.length, 1);
    assert.equal((seen[0]!.body as { atomic: boolean }).atomic, true);
    const g = await c.batchGetRows([
      { table: 'a', primaryKey: { k: 'x' } },
      { table: 'a', primaryKey: { k: 'y' } },
      { table: 'c', primaryKey: { k: 'z' } },
    ]);
    assert.equal(g[0]!.ok && g[0]!.value?.columns.v?.[0]?.value, 7n);
    assert.ok(g[1]!.ok && g[1]!.value === null);
    assert.ok(!g[2]!.ok && g[2]!.error.code === 'NOT_FOUND');
    await assert.rejects(
      c.batchWriteRows([]),
      (e) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT',
    );
  });
});
