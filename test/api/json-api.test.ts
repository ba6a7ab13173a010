/**
 * JSON over HTTP derived from kv.proto (src/api/proto-json.ts) against a
 * real 3-node cluster, run in-process: three TesseraServers with temp data
 * dirs and every port (Raft, HTTP, gRPC) a free loopback port. Every rpc is
 * called as `POST /tessera.v1.KV/<Rpc>` with a JSON body and its answer
 * compared with what gRPC answers for the same call; garbage bodies get
 * coded 4xx errors; every rpc of the loaded service has a route (with a
 * canary: a definition with an extra rpc fails the check). A small .proto
 * written to a temp dir covers the JSON forms kv.proto does not use (maps,
 * nested types, bytes, signed 64-bit). Every wait is bounded; `after` stops
 * every server and client it started.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  Client,
  credentials,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync, type ServiceDefinition } from '@grpc/proto-loader';
import { AssertionError } from '../../src/core/assert.ts';
import type { KvService } from '../../src/api/http-api.ts';
import { kvHandlers } from '../../src/api/kv-handlers.ts';
import { KV_PROTO_LOADER_OPTIONS, loadKvProto, loadKvService } from '../../src/api/kv-proto.ts';
import { BODY_BYTES_MAX, VALUE_BYTES_MAX } from '../../src/api/limits.ts';
import {
  PROTO_JSON_DEPTH_MAX,
  protoJsonRoutes,
  rpcsWithoutHandler,
} from '../../src/api/proto-json.ts';
import { InProcessCluster, type InProcessNode } from '../support/in-process-cluster.ts';

const CALL_DEADLINE_MS = 10_000;
const FETCH_TIMEOUT_MS = 10_000;

interface Node extends InProcessNode {
  readonly client: Client;
}

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

const KvClient = makeGenericClientConstructor(loadKvService(), 'KV');
const cluster = new InProcessCluster('tessera-json-', 'json-test');
const nodes = new Map<number, Node>();

/** POSTs `body` (JSON-encoded unless a string) to `path` on `http`. */
async function post(http: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`http://${http}${path}`, {
    method: 'POST',
    ...(body === undefined
      ? {}
      : {
          headers: { 'content-type': 'application/json' },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Calls an rpc through its JSON route. */
function rpc(node: Node, method: string, body?: unknown): Promise<Reply> {
  return post(node.http, `/tessera.v1.KV/${method}`, body);
}

/** Calls an rpc through its JSON route and asserts a 200. */
async function jsonOk(node: Node, method: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await rpc(node, method, body);
  assert.equal(r.status, 200, `${method}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Calls an rpc through its JSON route and asserts the HTTP status and error code. */
async function jsonFails(
  node: Node,
  method: string,
  body: unknown,
  status: number,
  code: string,
): Promise<Record<string, unknown>> {
  const r = await rpc(node, method, body);
  assert.deepEqual([r.status, r.body.code], [status, code], JSON.stringify(r.body));
  assert.equal(typeof r.body.message, 'string');
  assert.ok(r.body.retryable === 'yes' || r.body.retryable === 'no', JSON.stringify(r.body));
  return r.body;
}

/** Calls an rpc over gRPC and asserts success. */
function grpcOk(node: Node, method: string, req: object): Promise<Record<string, unknown>> {
  const client = node.client as unknown as Record<string, (...args: unknown[]) => unknown>;
  return new Promise((resolve, reject) => {
    client[method]!.call(
      node.client,
      req,
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (err: ServiceError | null, res: Record<string, unknown>) =>
        err === null ? resolve(res) : reject(new Error(`${method}: ${err.code} ${err.details}`)),
    );
  });
}

/** Calls an rpc through JSON and gRPC and asserts both answer the same (and returns it). */
async function same(node: Node, method: string, req: object): Promise<Record<string, unknown>> {
  const viaJson = await jsonOk(node, method, req);
  assert.deepEqual(viaJson, await grpcOk(node, method, req), `${method} ${JSON.stringify(req)}`);
  return viaJson;
}

/** The node that leads the data range, once every node knows it. */
async function waitForLeader(): Promise<Node> {
  return nodes.get((await cluster.waitForLeader()).id)!;
}

/**
 * The rpcs of `service` that have no JSON route on `http`: those whose path
 * answers the not-found handler's NOT_FOUND. Posts `{}`, which every rpc of
 * kv.proto refuses or answers without writing.
 */
async function unroutedRpcs(http: string, service: ServiceDefinition): Promise<string[]> {
  const missing: string[] = [];
  for (const [name, method] of Object.entries(service)) {
    const r = await post(http, method.path, {});
    const unrouted = r.body.code === 'NOT_FOUND' && String(r.body.message).startsWith('no route');
    if (r.status === 404 || unrouted) missing.push(name);
  }
  return missing;
}

/** The service of kv.proto plus an rpc `Frobnicate` that nothing implements. */
function withExtraRpc(service: ServiceDefinition): ServiceDefinition {
  return { ...service, Frobnicate: { ...service.Status!, path: '/tessera.v1.KV/Frobnicate' } };
}

before(async () => {
  await cluster.start();
  for (const n of cluster.nodes.values()) {
    nodes.set(n.id, { ...n, client: new KvClient(n.grpc, credentials.createInsecure()) });
  }
});

after(async () => {
  for (const n of nodes.values()) n.client.close();
  await cluster.stop();
});

test('every rpc answers through POST /tessera.v1.KV/<Rpc> exactly as over gRPC', async () => {
  const leader = await waitForLeader();
  assert.deepEqual(await same(leader, 'Put', { key: 'j/a', value: '1' }), {});
  assert.deepEqual(await same(leader, 'Get', { key: 'j/a' }), { value: '1' });
  const serializable = { key: 'j/a', consistency: 'SERIALIZABLE' };
  assert.deepEqual(await same(leader, 'Get', serializable), { value: '1' });
  // Enum numbers are accepted too; unknown fields are dropped.
  assert.deepEqual(await jsonOk(leader, 'Get', { key: 'j/a', consistency: 1, extra: [1] }), {
    value: '1',
  });
  assert.deepEqual(await same(leader, 'Delete', { key: 'j/a' }), {});
  assert.deepEqual(await same(leader, 'Get', { key: 'j/a' }), {}, 'an absent key has no value');

  // CompareAndSwap with a session: the retry is answered from the first attempt.
  const session = { client: '9007199254740991', seq: '1' };
  const cas = { key: 'j/c', value: 'x', session };
  assert.deepEqual(await jsonOk(leader, 'CompareAndSwap', cas), { swapped: true });
  assert.deepEqual(await jsonOk(leader, 'CompareAndSwap', cas), { swapped: true });
  assert.deepEqual(await grpcOk(leader, 'CompareAndSwap', cas), { swapped: true });
  assert.deepEqual(await same(leader, 'CompareAndSwap', { key: 'j/c', value: 'y' }), {
    swapped: false,
  });
  // A session id as a JSON number is accepted; an older seq is refused.
  const next = { key: 'j/c', expect: 'x', value: 'z', session: { client: 4242, seq: 2 } };
  assert.deepEqual(await jsonOk(leader, 'CompareAndSwap', next), { swapped: true });
  await jsonFails(
    leader,
    'Put',
    { key: 'j/c', value: 'old', session: { client: 4242, seq: 1 } },
    400,
    'INVALID_ARGUMENT',
  );
  assert.deepEqual(await same(leader, 'Get', { key: 'j/c' }), { value: 'z' });

  // Scan pages with limit and next, page for page equal to gRPC's.
  const keys = Array.from({ length: 7 }, (_, i) => `j/s/${i}`);
  for (const k of keys) await jsonOk(leader, 'Put', { key: k, value: `v-${k}` });
  await jsonOk(leader, 'Put', { key: 'j/s0', value: 'outside' });
  const seen: string[] = [];
  let start: string | undefined = 'j/s/';
  for (let page = 0; start !== undefined && page < 10; page++) {
    const res = await same(leader, 'Scan', { start, end: 'j/s0', limit: 3 });
    const pairs = res.pairs as { key: string; value: string }[];
    assert.ok(pairs.length <= 3);
    for (const p of pairs) {
      assert.deepEqual(Object.keys(p), ['key', 'value']);
      assert.equal(p.value, `v-${p.key}`);
      seen.push(p.key);
    }
    assert.ok(start === 'j/s/' || seen.length > 0);
    start = res.next as string | undefined;
  }
  assert.deepEqual(seen, keys);
  // A 32-bit integer may be a decimal string; the last page has no next.
  const last = await jsonOk(leader, 'Scan', { start: 'j/s/6', end: 'j/s0', limit: '5' });
  assert.deepEqual(last, { pairs: [{ key: 'j/s/6', value: 'v-j/s/6' }] });

  // Status: the proto's field names (snake_case) and uint64 as decimal strings.
  const viaJson = await jsonOk(leader, 'Status', {});
  const viaGrpc = await grpcOk(leader, 'Status', {});
  assert.deepEqual(Object.keys(viaJson).sort(), Object.keys(viaGrpc).sort());
  assert.ok('last_index' in viaJson && !('lastIndex' in viaJson));
  assert.equal(viaJson.id, String(leader.id));
  const ranges = viaJson.ranges as Record<string, unknown>[];
  const grpcRanges = viaGrpc.ranges as Record<string, unknown>[];
  assert.deepEqual(Object.keys(ranges[1]!).sort(), Object.keys(grpcRanges[1]!).sort());
  assert.deepEqual(
    ranges.map((r) => [r.id, r.kind, r.role]),
    [
      ['1', 'meta', ranges[0]!.role],
      ['2', 'data', 'leader'],
    ],
  );
  assert.match(String(ranges[1]!.commit), /^[1-9][0-9]*$/);
  const members = viaJson.members as Record<string, unknown>[];
  assert.deepEqual(members, viaGrpc.members);
  assert.deepEqual(Object.keys(members[0]!).sort(), ['http', 'id', 'raft']);
  // A POST without a body is the empty request message.
  const noBody = await rpc(leader, 'Status');
  assert.equal(noBody.status, 200, JSON.stringify(noBody.body));
  assert.equal(noBody.body.id, String(leader.id));
});

test('a follower answers a JSON Put with 421 NOT_LEADER and the leader hint', async () => {
  const leader = await waitForLeader();
  const follower = [...nodes.values()].find((n) => n !== leader)!;
  const body = await jsonFails(follower, 'Put', { key: 'j/f', value: 'v' }, 421, 'NOT_LEADER');
  assert.deepEqual(body.leaderHint, { id: leader.id, http: leader.http });
  await jsonOk(leader, 'Put', { key: 'j/f', value: 'v' });
  assert.deepEqual(await same(follower, 'Get', { key: 'j/f' }), { value: 'v' });
});

test('garbage bodies get coded 4xx errors and the node keeps serving', async () => {
  const leader = await waitForLeader();
  const inv = (method: string, body: unknown): Promise<Record<string, unknown>> =>
    jsonFails(leader, method, body, 400, 'INVALID_ARGUMENT');
  await inv('Put', '{"key": nope');
  const array = await inv('Put', [1]);
  assert.match(String(array.message), /the body must be a JSON object/);
  await inv('Put', '"a string"');
  await inv('Put', 'null');
  const keyObject = await inv('Put', { key: { a: 1 }, value: 'v' });
  assert.match(String(keyObject.message), /^key must be a string/);
  const valueNumber = await inv('Put', { key: 'j/g', value: 42 });
  assert.match(String(valueNumber.message), /^value must be a string/);
  await inv('Put', { value: 'v' });
  await inv('Put', { key: 'j/g', value: 'v', session: 5 });
  await inv('Put', { key: 'j/g', value: 'v', session: { client: 'abc', seq: '1' } });
  await inv('Put', { key: 'j/g', value: 'v', session: { client: '-1', seq: '1' } });
  await inv('Put', { key: 'j/g', value: 'v', session: { client: 1.5, seq: '1' } });
  await inv('Put', { key: 'j/g', value: 'v', session: { client: '18446744073709551616' } });
  await inv('Put', { key: 'j/g', value: 'v', session: { client: 7 } });
  await inv('Put', { key: 'j/g', value: 'v', session: { client: 2 ** 60, seq: 1 } });
  await inv('Get', { key: 'j/g', consistency: 'bogus' });
  await inv('Get', { key: 'j/g', consistency: 7 });
  await inv('Get', { key: 'j/g', consistency: true });
  await inv('Scan', { limit: 0 });
  await inv('Scan', { limit: 1.5 });
  await inv('Scan', { limit: -1 });
  await inv('Scan', { limit: 'ten' });
  await inv('Scan', { start: ['a'] });
  await inv('CompareAndSwap', { key: 'j/g', expect: {} });
  const garbage = await post(leader.http, '/tessera.v1.KV/Put', 'key=a');
  assert.deepEqual([garbage.status, garbage.body.code], [400, 'INVALID_ARGUMENT']);

  await jsonFails(leader, 'Get', { key: 'k'.repeat(1025) }, 413, 'KEY_TOO_LARGE');
  const bigValue = { key: 'j/g', value: 'x'.repeat(VALUE_BYTES_MAX + 1) };
  await jsonFails(leader, 'Put', bigValue, 413, 'VALUE_TOO_LARGE');
  const huge = await post(leader.http, '/tessera.v1.KV/Put', {
    key: 'j/g',
    value: 'h'.repeat(BODY_BYTES_MAX),
  });
  assert.deepEqual([huge.status, huge.body.code], [413, 'REQUEST_TOO_LARGE']);

  const unknown = await jsonFails(leader, 'Frobnicate', {}, 404, 'NOT_FOUND');
  assert.match(String(unknown.message), /no route POST \/tessera\.v1\.KV\/Frobnicate/);
  const get = await fetch(`http://${leader.http}/tessera.v1.KV/Status`);
  assert.equal(get.status, 404, 'rpc routes take POST only');

  await jsonOk(leader, 'Put', { key: 'j/still', value: 'serving' });
  assert.deepEqual(await same(leader, 'Get', { key: 'j/still' }), { value: 'serving' });
});

test('every rpc of the loaded service has a JSON route and a handler; an extra rpc fails the check', async () => {
  const leader = await waitForLeader();
  const { service, types } = loadKvProto();
  assert.ok(Object.keys(service).length >= 6);
  assert.deepEqual(await unroutedRpcs(leader.http, service), []);
  const stub = {} as KvService;
  assert.deepEqual(rpcsWithoutHandler(service, kvHandlers(stub)), []);
  assert.equal(protoJsonRoutes({ service, types }, kvHandlers(stub)).length, 6);

  // Canary: the same checks must notice an rpc that nothing implements.
  const extended = withExtraRpc(service);
  assert.deepEqual(await unroutedRpcs(leader.http, extended), ['Frobnicate']);
  assert.deepEqual(rpcsWithoutHandler(extended, kvHandlers(stub)), ['Frobnicate']);
  assert.throws(
    () => protoJsonRoutes({ service: extended, types }, kvHandlers(stub)),
    (err: unknown) => err instanceof AssertionError && /Frobnicate/.test(err.message),
  );
});

test('the JSON forms of types kv.proto does not use: maps, nested and signed 64-bit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-proto-json-'));
  try {
    const file = join(dir, 'echo.proto');
    writeFileSync(
      file,
      `syntax = "proto3";
package t.v1;
service Echo { rpc Echo(Req) returns (Req); }
enum Color { RED = 0; BLUE = 1; }
message Inner { sint64 n = 1; }
message Req {
  message Nested { string s = 1; Req again = 2; }
  bool flag = 1;
  int32 i = 2;
  repeated string tags = 3;
  map<string, Inner> by_name = 4;
  map<uint32, Color> colors = 5;
  Nested nested = 6;
  bytes raw = 7;
  double d = 8;
}
`,
    );
    const types = loadSync(file, { ...KV_PROTO_LOADER_OPTIONS });
    const service = types['t.v1.Echo'] as ServiceDefinition;
    const [route] = protoJsonRoutes({ service, types }, { Echo: async (req) => req });
    assert.equal(route!.path, '/t.v1.Echo/Echo');
    const echo = (body: unknown): Promise<object> => route!.call(body);
    const full = {
      flag: true,
      i: -5,
      tags: ['a', 'b'],
      by_name: { x: { n: '-9223372036854775808' } },
      colors: { '7': 'BLUE' },
      nested: { s: 'deep', again: { i: 1 } },
      raw: 'aGk=',
      d: 1.5,
    };
    assert.deepEqual(await echo(full), full);
    assert.deepEqual(await echo({ i: '12', colors: { '3': 1 }, ignored: 1 }), {
      i: 12,
      colors: { '3': 'BLUE' },
    });
    const refused = async (body: unknown, message: RegExp): Promise<void> => {
      await assert.rejects(echo(body), (err: unknown) => {
        const e = err as { code?: string; message?: string };
        return e.code === 'INVALID_ARGUMENT' && message.test(e.message ?? '');
      });
    };
    await refused({ flag: 'yes' }, /^flag must be true or false/);
    await refused({ i: 2 ** 31 }, /^i must be an integer/);
    await refused({ tags: 'a' }, /^tags must be an array/);
    await refused({ tags: ['a', 1] }, /^tags\[1\] must be a string/);
    await refused({ by_name: [] }, /^by_name must be a JSON object/);
    await refused({ by_name: { x: { n: '1e3' } } }, /^by_name\["x"\]\.n must be a signed 64-bit/);
    await refused({ colors: { x: 'BLUE' } }, /^colors\["x"\] \(key\) must be an integer/);
    await refused({ colors: { '1': 'GREEN' } }, /must be one of RED, BLUE/);
    await refused({ nested: { again: { nested: 'no' } } }, /^nested\.again\.nested must be/);
    await refused({ raw: 'not base64!' }, /^raw must be base64/);
    await refused({ d: 'x' }, /^d must be a number/);
    // Recursive types cannot nest without bound.
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < PROTO_JSON_DEPTH_MAX; i++) deep = { nested: { again: deep } };
    await refused(deep, /deeper than/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
