/**
 * The gRPC API against a real 3-node cluster, run in-process: three
 * TesseraServers with temp data dirs and every port (Raft, HTTP, gRPC) a
 * free loopback port. A grpc-js client loaded from the same kv.proto checks
 * round trips through the leader, NOT_LEADER from a follower, validation,
 * exactly-once sessions, and (against a stub service) that a bug becomes
 * INTERNAL without taking the server down. Every wait is bounded; `after`
 * stops every server and client it started.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  Client,
  credentials,
  makeGenericClientConstructor,
  status,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { TesseraError } from '../../src/core/errors.ts';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc-server.ts';
import { loadKvService } from '../../src/api/kv-proto.ts';
import type { KvService } from '../../src/api/http-api.ts';
import { InProcessCluster, type InProcessNode } from '../support/in-process-cluster.ts';

const CALL_DEADLINE_MS = 10_000;
const VALUE_BYTES_MAX = 1 << 20;

interface Node extends InProcessNode {
  readonly client: Client;
}

/** What a unary call ended with: a response, or the error with its trailing metadata. */
type Outcome =
  | { readonly ok: true; readonly res: Record<string, unknown> }
  | { readonly ok: false; readonly err: ServiceError };

const service = loadKvService();
const KvClient = makeGenericClientConstructor(service, 'KV');
const cluster = new InProcessCluster('tessera-grpc-', 'grpc-test');
const nodes = new Map<number, Node>();
const extraClients: Client[] = [];
const extraServers: GrpcServerHandle[] = [];

function call(client: Client, method: string, req: object): Promise<Outcome> {
  const fn = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
  return new Promise((resolve) => {
    fn.call(
      client,
      req,
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (err: ServiceError | null, res: Record<string, unknown>) =>
        resolve(err === null ? { ok: true, res } : { ok: false, err }),
    );
  });
}

/** Calls and asserts success. */
async function ok(client: Client, method: string, req: object): Promise<Record<string, unknown>> {
  const r = await call(client, method, req);
  if (!r.ok)
    assert.fail(`${method} failed: ${r.err.code} ${r.err.details} ${meta(r.err.metadata)}`);
  return r.res;
}

/** Calls and asserts failure with `code` and metadata `tessera-code: tesseraCode`. */
async function fails(
  client: Client,
  method: string,
  req: object,
  code: status,
  tesseraCode: string,
): Promise<ServiceError> {
  const r = await call(client, method, req);
  assert.ok(!r.ok, `${method} unexpectedly succeeded`);
  assert.equal(r.err.code, code, `${r.err.details} ${meta(r.err.metadata)}`);
  assert.equal(r.err.metadata.get('tessera-code')[0], tesseraCode);
  return r.err;
}

function meta(m: Metadata): string {
  return JSON.stringify(m.getMap());
}

/**
 * The node that leads the data range (the whole user key space: no initial
 * splits), once every node knows it.
 */
async function waitForLeader(): Promise<Node> {
  return nodes.get((await cluster.waitForLeader()).id)!;
}

before(async () => {
  await cluster.start();
  for (const n of cluster.nodes.values()) {
    nodes.set(n.id, { ...n, client: new KvClient(n.grpc, credentials.createInsecure()) });
  }
});

after(async () => {
  for (const c of [...extraClients, ...[...nodes.values()].map((n) => n.client)]) c.close();
  await Promise.all(extraServers.map((s) => s.close()));
  await cluster.stop();
});

test('Put, Get, Delete, CompareAndSwap, Scan and Status round-trip through the leader', async () => {
  const { client, id } = await waitForLeader();
  assert.deepEqual(await ok(client, 'Put', { key: 'a', value: '1' }), {});
  assert.deepEqual(await ok(client, 'Get', { key: 'a' }), { value: '1' });
  assert.deepEqual(await ok(client, 'Get', { key: 'a', consistency: 'SERIALIZABLE' }), {
    value: '1',
  });
  assert.deepEqual(await ok(client, 'Put', { key: 'empty', value: '' }), {});
  assert.deepEqual(await ok(client, 'Get', { key: 'empty' }), { value: '' });
  assert.deepEqual(await ok(client, 'Delete', { key: 'a' }), {});
  assert.deepEqual(await ok(client, 'Get', { key: 'a' }), {}, 'an absent key has no value');
  assert.deepEqual(await ok(client, 'Delete', { key: 'never' }), {});

  // CompareAndSwap: absent expect = "must not exist"; absent value = delete.
  assert.deepEqual(await ok(client, 'CompareAndSwap', { key: 'c', value: 'x' }), {
    swapped: true,
  });
  const lost = await ok(client, 'CompareAndSwap', { key: 'c', value: 'y' });
  assert.ok(lost.swapped !== true);
  assert.deepEqual(await ok(client, 'CompareAndSwap', { key: 'c', expect: 'x', value: 'y' }), {
    swapped: true,
  });
  assert.deepEqual(await ok(client, 'Get', { key: 'c' }), { value: 'y' });
  assert.deepEqual(await ok(client, 'CompareAndSwap', { key: 'c', expect: 'y' }), {
    swapped: true,
  });
  assert.deepEqual(await ok(client, 'Get', { key: 'c' }), {});

  // Scan pages through [s/, s0) in byte order.
  const keys = Array.from({ length: 7 }, (_, i) => `s/${i}`);
  for (const k of keys) await ok(client, 'Put', { key: k, value: `v-${k}` });
  await ok(client, 'Put', { key: 's0', value: 'outside' });
  const seen: string[] = [];
  let start: string | undefined = 's/';
  for (let page = 0; start !== undefined && page < 10; page++) {
    const res = await ok(client, 'Scan', { start, end: 's0', limit: 3 });
    const pairs = res.pairs as { key: string; value: string }[];
    assert.ok(pairs.length <= 3);
    for (const p of pairs) {
      assert.equal(p.value, `v-${p.key}`);
      seen.push(p.key);
    }
    start = res.next as string | undefined;
  }
  assert.deepEqual(seen, keys);
  const all = await ok(client, 'Scan', { consistency: 'SERIALIZABLE' });
  assert.ok((all.pairs as unknown[]).length >= keys.length + 1);
  assert.equal(all.next, undefined);

  const st = await ok(client, 'Status', {});
  assert.equal(st.id, String(id));
  assert.equal((st.members as unknown[]).length, 3);
  const ranges = st.ranges as Record<string, unknown>[];
  assert.deepEqual(
    ranges.map((r) => [r.id, r.kind]),
    [
      ['1', 'meta'],
      ['2', 'data'],
    ],
  );
  const data = ranges[1]!;
  assert.equal(data.role, 'leader');
  assert.equal(data.leader, String(id));
  assert.equal(data.start, '');
  assert.equal(data.end, undefined, 'the only data range reaches the end of the key space');
  assert.ok(Number(data.commit) > 0 && Number(data.last_index) >= Number(data.commit));
});

test('a follower refuses a Put with UNAVAILABLE, NOT_LEADER and the leader hint', async () => {
  const leader = await waitForLeader();
  const follower = [...nodes.values()].find((n) => n !== leader)!;
  const err = await fails(
    follower.client,
    'Put',
    { key: 'f', value: 'v' },
    status.UNAVAILABLE,
    'NOT_LEADER',
  );
  assert.equal(err.metadata.get('tessera-retryable')[0], 'yes');
  assert.equal(err.metadata.get('tessera-leader-id')[0], String(leader.id));
  assert.equal(err.metadata.get('tessera-leader-http')[0], leader.http);
  // Reads on a follower still work: serializable locally, linearizable via ReadIndex.
  await ok(leader.client, 'Put', { key: 'f', value: 'v' });
  assert.deepEqual(await ok(follower.client, 'Get', { key: 'f' }), { value: 'v' });
});

test('invalid requests get INVALID_ARGUMENT with a tessera-code and the server keeps serving', async () => {
  const { client } = await waitForLeader();
  const inv = status.INVALID_ARGUMENT;
  await fails(client, 'Put', { key: '', value: 'v' }, inv, 'INVALID_ARGUMENT');
  await fails(client, 'Put', { value: 'v' }, inv, 'INVALID_ARGUMENT');
  const big = await fails(
    client,
    'Put',
    { key: 'big', value: 'x'.repeat(VALUE_BYTES_MAX + 1) },
    inv,
    'VALUE_TOO_LARGE',
  );
  assert.equal(big.metadata.get('tessera-retryable')[0], 'no');
  await fails(
    client,
    'CompareAndSwap',
    { key: 'big', expect: 'é'.repeat(VALUE_BYTES_MAX / 2 + 1) },
    inv,
    'VALUE_TOO_LARGE',
  );
  await fails(client, 'Get', { key: 'k'.repeat(1025) }, inv, 'KEY_TOO_LARGE');
  await fails(client, 'Scan', { end: 'e'.repeat(1025) }, inv, 'KEY_TOO_LARGE');
  await fails(client, 'Scan', { limit: 0 }, inv, 'INVALID_ARGUMENT');
  await fails(client, 'Scan', { limit: 1001 }, inv, 'INVALID_ARGUMENT');
  await fails(client, 'Get', { key: 'k', consistency: 7 }, inv, 'INVALID_ARGUMENT');
  const session = (client: unknown, seq: unknown): object => ({
    key: 'k',
    value: 'v',
    session: { client, seq },
  });
  await fails(client, 'Put', session(0, 1), inv, 'INVALID_ARGUMENT');
  await fails(client, 'Put', session(5, undefined), inv, 'INVALID_ARGUMENT');
  await fails(client, 'Put', session('9007199254740993', 1), inv, 'INVALID_ARGUMENT');

  // A maximal value is accepted; a message above the request limit is refused by grpc-js itself.
  await ok(client, 'Put', { key: 'max', value: 'm'.repeat(VALUE_BYTES_MAX) });
  const huge = await call(client, 'Put', { key: 'huge', value: 'h'.repeat(3 * VALUE_BYTES_MAX) });
  assert.ok(!huge.ok && huge.err.code === status.RESOURCE_EXHAUSTED);

  await ok(client, 'Put', { key: 'still', value: 'serving' });
  assert.deepEqual(await ok(client, 'Get', { key: 'still' }), { value: 'serving' });
});

test('exactly-once: the same Session twice on a CompareAndSwap answers swapped=true both times', async () => {
  const { client } = await waitForLeader();
  await ok(client, 'Put', { key: 'once', value: 'a' });
  const req = { key: 'once', expect: 'a', value: 'z', session: { client: 424242, seq: 1 } };
  assert.deepEqual(await ok(client, 'CompareAndSwap', req), { swapped: true });
  // The retry is answered from the first attempt although the key now holds 'z'.
  assert.deepEqual(await ok(client, 'CompareAndSwap', req), { swapped: true });
  assert.deepEqual(await ok(client, 'Get', { key: 'once' }), { value: 'z' });
  // uint64 ids beyond 2^32 are exact; as decimal strings too.
  const wide = { client: '4294967297', seq: '2' };
  await ok(client, 'Put', { key: 'once', value: 'w', session: wide });
  // An older sequence number of a session is refused.
  await fails(
    client,
    'Put',
    { key: 'once', value: 'old', session: { client: '4294967297', seq: 1 } },
    status.INVALID_ARGUMENT,
    'INVALID_ARGUMENT',
  );
  assert.deepEqual(await ok(client, 'Get', { key: 'once' }), { value: 'w' });
});

test('errors map to status and metadata; a bug becomes INTERNAL without crashing', async () => {
  const stub: KvService = {
    write: async () => {
      throw new TesseraError('NOT_LEADER', undefined, { leaderHint: 2 });
    },
    read: async (key) => {
      if (key === 'bug') throw new TypeError('boom');
      if (key === 'unknown') throw new TesseraError('OUTCOME_UNKNOWN');
      return `value of ${key}`;
    },
    ranges: () => [],
    putMember: async () => {},
    deleteMember: async () => {},
    changeReplicas: async () => false,
    scan: async () => {
      throw new TesseraError('TIMEOUT');
    },
    status: () => {
      throw new RangeError('no status');
    },
    httpAddressOf: (id) => (id === 2 ? '127.0.0.1:9' : null),
  };
  const server = await startGrpcServer(stub, '127.0.0.1', 0);
  extraServers.push(server);
  const client = new KvClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
  extraClients.push(client);
  const bug = await fails(client, 'Get', { key: 'bug' }, status.INTERNAL, 'INTERNAL');
  assert.equal(bug.details, 'internal error');
  await fails(client, 'Status', {}, status.INTERNAL, 'INTERNAL');
  const nl = await fails(client, 'Put', { key: 'k' }, status.UNAVAILABLE, 'NOT_LEADER');
  assert.equal(nl.metadata.get('tessera-leader-id')[0], '2');
  assert.equal(nl.metadata.get('tessera-leader-http')[0], '127.0.0.1:9');
  const unknown = await fails(client, 'Get', { key: 'unknown' }, status.UNKNOWN, 'OUTCOME_UNKNOWN');
  assert.equal(unknown.metadata.get('tessera-retryable')[0], 'with-idempotency-key');
  await fails(client, 'Scan', {}, status.DEADLINE_EXCEEDED, 'TIMEOUT');
  assert.deepEqual(await ok(client, 'Get', { key: 'k' }), { value: 'value of k' });
  await server.close();
  await server.close();
});
