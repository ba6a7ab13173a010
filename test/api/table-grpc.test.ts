/**
 * The Tables service of table.proto against a real 3-node cluster, run
 * in-process (as grpc.test.ts): three TesseraServers with temp data dirs and
 * free loopback ports, and a grpc-js client per node loaded from the same
 * table.proto. Calls follow the NOT_LEADER hint (schema rpcs write the meta
 * range, row writes the data range holding `\u0000table/<name>`, and their
 * leaders may differ). Covers typed values (integers beyond 2^53, integral
 * doubles, booleans, bytes), explicit versions, increments, conditions,
 * paged range reads both ways with INF bounds, batches, the derived JSON
 * route, and malformed requests. Every wait is bounded; `after` stops every
 * server and client it started.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  Client,
  credentials,
  makeGenericClientConstructor,
  status,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadTableProto } from '../../src/api/table-proto.ts';
import { sleep } from '../../src/node/http-client.ts';
import { InProcessCluster, type InProcessNode } from '../support/in-process-cluster.ts';

/** How long a call keeps following leader hints (elections included). */
const LEADER_WAIT_MS = 20_000;
const CALL_DEADLINE_MS = 10_000;
const RETRY_PAUSE_MS = 50;

interface Node extends InProcessNode {
  readonly client: Client;
}

type Res = Record<string, unknown>;
type Outcome =
  { readonly ok: true; readonly res: Res } | { readonly ok: false; readonly err: ServiceError };

const TablesClient = makeGenericClientConstructor(loadTableProto().service, 'Tables');
const cluster = new InProcessCluster('tessera-table-grpc-', 'table-grpc-test');
const IDS = cluster.ids;
const nodes = new Map<number, Node>();

function call(client: Client, method: string, req: object): Promise<Outcome> {
  const fn = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
  return new Promise((resolve) => {
    fn.call(
      client,
      req,
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (err: ServiceError | null, res: Res) =>
        resolve(err === null ? { ok: true, res } : { ok: false, err }),
    );
  });
}

/**
 * Calls `method`, following NOT_LEADER hints (or trying the next node while
 * no leader is known) for up to LEADER_WAIT_MS; answers the first other outcome.
 */
async function rpc(method: string, req: object): Promise<Outcome> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  let id = IDS[0]!;
  for (;;) {
    const r = await call(nodes.get(id)!.client, method, req);
    const notLeader = !r.ok && r.err.metadata.get('tessera-code')[0] === 'NOT_LEADER';
    if (!notLeader || Date.now() > deadline) return r;
    const hint = Number(r.err.metadata.get('tessera-leader-id')[0] ?? 0);
    if (nodes.has(hint) && hint !== id) id = hint;
    else {
      id = IDS[(IDS.indexOf(id) + 1) % IDS.length]!;
      await sleep(RETRY_PAUSE_MS);
    }
  }
}

async function ok(method: string, req: object): Promise<Res> {
  const r = await rpc(method, req);
  if (!r.ok) {
    const m = JSON.stringify(r.err.metadata.getMap());
    assert.fail(`${method} failed: ${r.err.code} ${r.err.details} ${m}`);
  }
  return r.res;
}

/** Calls and asserts failure with gRPC `code` and metadata `tessera-code: tesseraCode`. */
async function fails(
  method: string,
  req: object,
  code: status,
  tesseraCode: string,
): Promise<ServiceError> {
  const r = await rpc(method, req);
  assert.ok(!r.ok, `${method} unexpectedly succeeded: ${JSON.stringify(r.ok && r.res)}`);
  assert.equal(r.err.code, code, r.err.details);
  assert.equal(r.err.metadata.get('tessera-code')[0], tesseraCode, r.err.details);
  return r.err;
}

/** POSTs a JSON body to a derived route, following the NOT_LEADER hint of the error body. */
async function postJson(path: string, body: unknown): Promise<{ status: number; body: Res }> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  let http = nodes.get(IDS[0]!)!.http;
  for (;;) {
    const res = await fetch(`http://${http}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Res;
    const hint = (json.leaderHint as { http?: string } | undefined)?.http;
    if (json.code !== 'NOT_LEADER' || Date.now() > deadline)
      return { status: res.status, body: json };
    if (hint !== undefined) http = hint;
    else await sleep(RETRY_PAUSE_MS);
  }
}

const str = (s: string): Res => ({ string_value: s });
const int = (s: string): Res => ({ integer_value: s });
/** A primary key of the test table: (org, id). */
const pk = (org: string, id: string): Res[] => [
  { name: 'org', value: str(org) },
  { name: 'id', value: int(id) },
];
const TABLE = 'people';
/** 2^53 + 1: not exact as a double. */
const BIG_ID = '9007199254740993';

before(async () => {
  await cluster.start();
  for (const n of cluster.nodes.values()) {
    nodes.set(n.id, { ...n, client: new TablesClient(n.grpc, credentials.createInsecure()) });
  }
});

after(async () => {
  for (const n of nodes.values()) n.client.close();
  await cluster.stop();
});

test('CreateTable, DescribeTable and ListTables answer typed schemas', async () => {
  const created = await ok('CreateTable', {
    name: TABLE,
    primary_key: [
      { name: 'org', type: 'STRING' },
      { name: 'id', type: 'INTEGER' },
    ],
    max_versions: 3,
  });
  const schema = {
    name: TABLE,
    primary_key: [
      { name: 'org', type: 'STRING' },
      { name: 'id', type: 'INTEGER' },
    ],
    max_versions: 3,
    max_version_offset_seconds: 86_400,
  };
  assert.deepEqual(created, { table: schema }, 'ttl_seconds is absent: forever');
  assert.deepEqual(await ok('DescribeTable', { name: TABLE }), { table: schema });
  const list = await ok('ListTables', {});
  assert.ok((list.tables as Res[]).some((t) => t.name === TABLE));
  await fails('CreateTable', created.table as object, status.ALREADY_EXISTS, 'ALREADY_EXISTS');
  const altered = await ok('AlterTable', { name: TABLE, ttl_seconds: 3600 });
  assert.equal((altered.table as Res).ttl_seconds, 3600);
  const forever = await ok('AlterTable', { name: TABLE, ttl_seconds: 0 });
  assert.equal((forever.table as Res).ttl_seconds, undefined, '0 means forever');
  assert.equal((forever.table as Res).max_versions, 3, 'unchanged');
});

test('PutRow and GetRow keep every value type exact, with explicit versions', async () => {
  const now = Date.now();
  const key = pk('a', BIG_ID);
  await ok('PutRow', {
    table: TABLE,
    primary_key: key,
    columns: [{ column: 'v', value: str('old'), version: String(now - 2000) }],
  });
  // An update adds a version; a second put would replace the whole row.
  await ok('UpdateRow', {
    table: TABLE,
    primary_key: key,
    put: [
      { column: 'v', value: str('new'), version: String(now - 1000) },
      { column: 'big', value: int('-9223372036854775808') },
      { column: 'dbl', value: { double_value: 1 } },
      { column: 'frac', value: { double_value: 0.25 } },
      { column: 'yes', value: { boolean_value: true } },
      { column: 'bin', value: { binary_value: Buffer.from([0, 1, 255]) } },
    ],
  });
  const got = await ok('GetRow', { table: TABLE, primary_key: key, max_versions: 2 });
  const row = got.row as { primary_key: Res[]; columns: { name: string; values: Res[] }[] };
  assert.deepEqual(row.primary_key, key, 'the key integer beyond 2^53 is exact');
  const col = (name: string): Res[] => row.columns.find((c) => c.name === name)!.values;
  assert.deepEqual(col('v'), [
    { value: str('new'), version: String(now - 1000) },
    { value: str('old'), version: String(now - 2000) },
  ]);
  assert.deepEqual(col('big')[0]!.value, int('-9223372036854775808'));
  assert.deepEqual(col('dbl')[0]!.value, { double_value: 1 }, 'an integral double stays a double');
  assert.deepEqual(col('frac')[0]!.value, { double_value: 0.25 });
  assert.deepEqual(col('yes')[0]!.value, { boolean_value: true });
  assert.deepEqual(col('bin')[0]!.value, { binary_value: Buffer.from([0, 1, 255]) });

  // One version by default; only the columns asked for; as of an older version.
  const one = await ok('GetRow', { table: TABLE, primary_key: key, columns: ['v'] });
  assert.deepEqual((one.row as typeof row).columns, [
    { name: 'v', values: [{ value: str('new'), version: String(now - 1000) }] },
  ]);
  const past = await ok('GetRow', {
    table: TABLE,
    primary_key: key,
    columns: ['v'],
    at: String(now - 1500),
    consistency: 'SERIALIZABLE',
  });
  assert.deepEqual((past.row as typeof row).columns[0]!.values[0]!.value, str('old'));
  assert.deepEqual(await ok('GetRow', { table: TABLE, primary_key: pk('a', '1') }), {});
});

test('UpdateRow increments and refuses a failing condition with ABORTED CONDITION_FAILED', async () => {
  const key = pk('a', BIG_ID);
  const inc = { table: TABLE, primary_key: key, increment: [{ column: 'n', delta: '5' }] };
  const first = await ok('UpdateRow', inc);
  assert.deepEqual(
    (first.increments as Res[]).map((c) => [c.column, c.value]),
    [['n', int('5')]],
  );
  const second = await ok('UpdateRow', inc);
  const cell = (second.increments as Res[])[0]!;
  assert.deepEqual(cell.value, int('10'));
  assert.match(cell.version as string, /^[0-9]+$/);

  const guarded = {
    table: TABLE,
    primary_key: key,
    put: [{ column: 's', value: str('x') }],
    condition: {
      expect: 'EXPECT_EXIST',
      if: { relation: { column: 'n', op: 'EQUAL', value: int('0') } },
    },
  };
  const err = await fails('UpdateRow', guarded, status.ABORTED, 'CONDITION_FAILED');
  assert.equal(err.metadata.get('tessera-retryable')[0], 'no');
  await fails(
    'PutRow',
    { table: TABLE, primary_key: key, condition: { expect: 'EXPECT_NOT_EXIST' } },
    status.ABORTED,
    'CONDITION_FAILED',
  );
  // The same write with a condition that holds (and, or, not) applies.
  const holds = {
    and: {
      terms: [
        { relation: { column: 'n', op: 'GREATER_EQUAL', value: int('10') } },
        {
          not: {
            relation: { column: 'missing', op: 'EQUAL', value: str('?'), pass_if_missing: false },
          },
        },
        {
          or: {
            terms: [{ relation: { column: 'yes', op: 'EQUAL', value: { boolean_value: true } } }],
          },
        },
      ],
    },
  };
  await ok('UpdateRow', { ...guarded, condition: { expect: 'EXPECT_EXIST', if: holds } });
  const got = await ok('GetRow', { table: TABLE, primary_key: key, columns: ['s'] });
  assert.deepEqual(
    (got.row as { columns: { values: Res[] }[] }).columns[0]!.values[0]!.value,
    str('x'),
  );
  // delete and delete_versions.
  await ok('UpdateRow', { table: TABLE, primary_key: key, delete: ['s'] });
  const gone = await ok('GetRow', { table: TABLE, primary_key: key, columns: ['s'] });
  assert.deepEqual(gone, {}, 'no visible cell among the columns read');
});

test('GetRange pages forward and backward between INF bounds', async () => {
  const ids = [1, 2, 3, 4, 5, 6, 7];
  for (const id of ids) {
    await ok('PutRow', {
      table: TABLE,
      primary_key: pk('b', String(id)),
      columns: [{ column: 'i', value: int(String(id)) }],
    });
  }
  const bound = (inf: 'INF_MIN' | 'INF_MAX'): Res[] => [
    { name: 'org', value: str('b') },
    { name: 'id', inf },
  ];
  const scan = async (direction: string, start: Res[], end: Res[]): Promise<string[]> => {
    const seen: string[] = [];
    let from: Res[] | undefined = start;
    for (let page = 0; from !== undefined && page < 10; page++) {
      const res = await ok('GetRange', { table: TABLE, start: from, end, direction, limit: 3 });
      const rows = res.rows as { primary_key: { value: Res }[] }[];
      assert.ok(rows.length <= 3);
      for (const r of rows) seen.push(r.primary_key[1]!.value.integer_value as string);
      from = res.next as Res[] | undefined;
    }
    return seen;
  };
  const all = ids.map(String);
  assert.deepEqual(await scan('FORWARD', bound('INF_MIN'), bound('INF_MAX')), all);
  assert.deepEqual(await scan('BACKWARD', bound('INF_MAX'), bound('INF_MIN')), [...all].reverse());
  // A value bound is inclusive at the start, exclusive at the end.
  assert.deepEqual(await scan('FORWARD', pk('b', '3'), pk('b', '6')), ['3', '4', '5']);
  // start_exclusive leaves the start row out, either way.
  for (const [direction, end, expected] of [
    ['FORWARD', bound('INF_MAX'), ['4', '5', '6']],
    ['BACKWARD', bound('INF_MIN'), ['2', '1']],
  ] as const) {
    const res = await ok('GetRange', {
      table: TABLE,
      start: pk('b', '3'),
      start_exclusive: true,
      end,
      direction,
      limit: 3,
    });
    const rows = res.rows as { primary_key: { value: Res }[] }[];
    assert.deepEqual(
      rows.map((r) => r.primary_key[1]!.value.integer_value),
      expected,
    );
    assert.notEqual(res.next_exclusive, true, 'no range edge in this one-range table');
  }
  // A filter keeps the rows for which it holds.
  const even = await ok('GetRange', {
    table: TABLE,
    start: bound('INF_MIN'),
    end: bound('INF_MAX'),
    filter: { relation: { column: 'i', op: 'GREATER_THAN', value: int('5') } },
  });
  assert.equal((even.rows as unknown[]).length, 2);
  assert.equal(even.next, undefined);
});

test('BatchWriteRow and BatchGetRow answer one result per item, in order', async () => {
  const res = await ok('BatchWriteRow', {
    writes: [
      {
        put: {
          table: TABLE,
          primary_key: pk('c', '1'),
          columns: [{ column: 'x', value: str('c1') }],
        },
      },
      {
        update: {
          table: TABLE,
          primary_key: pk('c', '2'),
          increment: [{ column: 'n', delta: '-3' }],
        },
      },
      { delete: { table: TABLE, primary_key: pk('b', '7') } },
      {
        delete: {
          table: TABLE,
          primary_key: pk('c', '9'),
          condition: { expect: 'EXPECT_EXIST' },
        },
      },
    ],
  });
  const results = res.results as Res[];
  assert.equal(results.length, 4);
  assert.deepEqual(results[0], {});
  assert.deepEqual(results[1], { increments: [{ column: 'n', value: int('-3') }] });
  assert.deepEqual(results[2], {});
  assert.equal((results[3]!.error as Res).code, 'CONDITION_FAILED');

  const got = await ok('BatchGetRow', {
    gets: [
      { table: TABLE, primary_key: pk('c', '1') },
      { table: TABLE, primary_key: pk('b', '7') },
      { table: 'no_such_table', primary_key: pk('c', '1') },
    ],
  });
  const g = got.results as Res[];
  assert.deepEqual((g[0]!.row as { columns: unknown[] }).columns, [
    { name: 'x', values: [(g[0]!.row as { columns: { values: Res[] }[] }).columns[0]!.values[0]] },
  ]);
  assert.deepEqual(
    (g[0]!.row as { columns: { values: Res[] }[] }).columns[0]!.values[0]!.value,
    str('c1'),
  );
  assert.deepEqual(g[1], {}, 'a deleted row is absent');
  assert.equal((g[2]!.error as Res).code, 'NOT_FOUND');
});

test('the derived JSON route POST /tessera.v1.Tables/<Rpc> puts and gets', async () => {
  const key = [
    { name: 'org', value: { string_value: 'j' } },
    { name: 'id', value: { integer_value: '9007199254740995' } },
  ];
  const put = await postJson('/tessera.v1.Tables/PutRow', {
    table: TABLE,
    primary_key: key,
    columns: [
      { column: 'bin', value: { binary_value: 'AAH/' } },
      { column: 'd', value: { double_value: 2 } },
    ],
  });
  assert.deepEqual(put, { status: 200, body: {} });
  const get = await postJson('/tessera.v1.Tables/GetRow', { table: TABLE, primary_key: key });
  assert.equal(get.status, 200);
  const row = get.body.row as { primary_key: unknown; columns: { name: string; values: Res[] }[] };
  assert.deepEqual(row.primary_key, key);
  const values = Object.fromEntries(row.columns.map((c) => [c.name, c.values[0]!.value]));
  assert.deepEqual(values, { bin: { binary_value: 'AAH/' }, d: { double_value: 2 } });
  const bad = await postJson('/tessera.v1.Tables/GetRow', { table: TABLE, primary_key: 'x' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'INVALID_ARGUMENT');
});

test('malformed requests get INVALID_ARGUMENT naming the field, and the node keeps serving', async () => {
  const inv = status.INVALID_ARGUMENT;
  const key = pk('a', BIG_ID);
  const check = async (method: string, req: object, field: string): Promise<void> => {
    const err = await fails(method, req, inv, 'INVALID_ARGUMENT');
    assert.ok(err.details.includes(field), `"${err.details}" names ${field}`);
  };
  await check('GetRow', { table: 'bad name', primary_key: key }, 'table');
  await check(
    'GetRow',
    { table: TABLE, primary_key: [{ name: 'org', value: {} }] },
    'primary_key[0].value',
  );
  await check(
    'PutRow',
    {
      table: TABLE,
      primary_key: key,
      columns: [{ column: 'c', value: { string_value: 'a', boolean_value: true } }],
    },
    'columns[0].value',
  );
  await check(
    'GetRow',
    { table: TABLE, primary_key: [{ name: 'org', inf: 'INF_MAX' }] },
    'primary_key[0].inf',
  );
  await check('GetRow', { table: TABLE, primary_key: [...key, key[0]!] }, 'primary_key[2].name');
  await check('GetRow', { table: TABLE, primary_key: pk('a', '1').slice(0, 1) }, 'id');
  await check(
    'PutRow',
    { table: TABLE, primary_key: key, columns: [{ column: 'c', value: { double_value: NaN } }] },
    'finite',
  );
  await check(
    'UpdateRow',
    {
      table: TABLE,
      primary_key: key,
      condition: { if: { relation: { column: 'n', value: int('1') } } },
    },
    'condition.if.relation.op',
  );
  let deep: Res = { relation: { column: 'n', op: 'EQUAL', value: int('1') } };
  for (let i = 0; i < 9; i++) deep = { not: deep };
  await check(
    'DeleteRow',
    { table: TABLE, primary_key: key, condition: { if: deep } },
    'condition.if',
  );
  await check(
    'BatchWriteRow',
    { writes: [{ delete: { table: TABLE, primary_key: key, session: { client: 1, seq: 1 } } }] },
    'writes[0].delete.session',
  );
  await check('BatchWriteRow', { writes: [{}] }, 'writes[0]');
  await check('UpdateRow', { table: TABLE, primary_key: key }, 'update');
  await check('GetRange', { table: TABLE, limit: 0 }, 'limit');
  await check(
    'PutRow',
    {
      table: TABLE,
      primary_key: key,
      columns: [{ column: 'v', value: str('x') }],
      session: { client: 0, seq: 1 },
    },
    'session.client',
  );
  await fails(
    'CreateTable',
    { name: 'untyped', primary_key: [{ name: 'k' }] },
    inv,
    'INVALID_SCHEMA',
  );
  await fails('DescribeTable', { name: 'no_such_table' }, status.NOT_FOUND, 'NOT_FOUND');
  // Still serving.
  assert.ok((await ok('GetRow', { table: TABLE, primary_key: key })).row !== undefined);
});

test('DropTable removes the table', async () => {
  assert.deepEqual(await ok('DropTable', { name: TABLE }), {});
  await fails('DescribeTable', { name: TABLE }, status.NOT_FOUND, 'NOT_FOUND');
  await fails('GetRow', { table: TABLE, primary_key: pk('a', '1') }, status.NOT_FOUND, 'NOT_FOUND');
});
