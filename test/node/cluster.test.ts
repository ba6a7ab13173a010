/**
 * A real 3-node cluster: three `tessera start` child processes on free
 * loopback ports, each with its own temp data dir. Checks writes through the
 * leader, linearizable reads from every node, request validation, leader
 * failover after SIGKILL (no acknowledged write lost) and catch-up of the
 * restarted node. Every wait is bounded; `after` kills every child it started.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { NodeStatus } from '../../src/api/http-api.ts';
import { LocalCluster, type ClusterNode } from '../support/local-cluster.ts';
import {
  httpJson,
  leaderHintOf,
  requestFollowingLeader,
  sleep,
  type HttpReply,
} from '../../src/node/http-client.ts';

const IDS = [1, 2, 3] as const;
const LEADER_WAIT_MS = 20_000;
const KEYS = 20;

const cluster = new LocalCluster('tessera-cluster-', IDS);
const nodes = cluster.nodes;
const startNode = (node: ClusterNode): void => cluster.start(node);
const killNode = (node: ClusterNode): Promise<void> => cluster.kill(node);
const statusOf = (node: ClusterNode): Promise<NodeStatus | null> => cluster.statusOf(node);
const waitForLeader = (): Promise<ClusterNode> => cluster.waitForLeader(LEADER_WAIT_MS);

const liveEndpoints = (): string[] => cluster.liveEndpoints();

const kvPath = (key: string): string => `/v1/kv/${encodeURIComponent(key)}`;

function put(address: string, key: string, value: unknown): Promise<HttpReply> {
  return httpJson(address, { method: 'PUT', path: kvPath(key), body: { value } });
}

/** A linearizable read starting at `address`, following NOT_LEADER hints. */
async function readFrom(address: string, key: string): Promise<unknown> {
  const endpoints = [address, ...liveEndpoints().filter((e) => e !== address)];
  const r = await requestFollowingLeader(endpoints, { method: 'GET', path: kvPath(key) });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { value: unknown }).value;
}

function codeOf(r: HttpReply): unknown {
  return (r.body as { code?: unknown }).code;
}

before(async () => {
  await cluster.init();
});

after(async () => {
  await cluster.dispose();
});

test('writes through the leader are readable linearizably from every node', async () => {
  const leader = await waitForLeader();
  for (let i = 0; i < KEYS; i++) {
    const r = await requestFollowingLeader([leader.http], {
      method: 'PUT',
      path: kvPath(`k${i}`),
      body: { value: `v${i}` },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  const follower = [...nodes.values()].find((n) => n !== leader)!;
  const refused = await put(follower.http, 'k-follower', 'x');
  assert.equal(refused.status, 421, JSON.stringify(refused.body));
  assert.equal(codeOf(refused), 'NOT_LEADER');
  assert.equal(leaderHintOf(refused.body), leader.http);
  for (const node of nodes.values()) {
    for (let i = 0; i < KEYS; i++) assert.equal(await readFrom(node.http, `k${i}`), `v${i}`);
  }
  const st = await statusOf(leader);
  assert.ok(st !== null && st.pid === leader.proc!.pid && st.members.length === 3);
});

test('malformed requests get coded 4xx errors and the node keeps serving', async () => {
  const leader = await waitForLeader();
  const garbage = await fetch(`http://${leader.http}${kvPath('g')}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: '{"value": nope',
  });
  assert.equal(garbage.status, 400);
  assert.equal(((await garbage.json()) as { code: string }).code, 'INVALID_ARGUMENT');
  const notString = await put(leader.http, 'g', 42);
  assert.deepEqual([notString.status, codeOf(notString)], [400, 'INVALID_ARGUMENT']);
  const array = await httpJson(leader.http, { method: 'PUT', path: kvPath('g'), body: [1] });
  assert.deepEqual([array.status, codeOf(array)], [400, 'INVALID_ARGUMENT']);
  const big = await put(leader.http, 'g', 'x'.repeat((1 << 20) + 1));
  assert.deepEqual([big.status, codeOf(big)], [413, 'VALUE_TOO_LARGE']);
  const bigKey = await put(leader.http, 'k'.repeat(1025), 'v');
  assert.deepEqual([bigKey.status, codeOf(bigKey)], [413, 'KEY_TOO_LARGE']);
  const badSeq = await httpJson(leader.http, {
    method: 'PUT',
    path: kvPath('g'),
    body: { value: 'v' },
    headers: { 'x-tessera-client': '7' },
  });
  assert.deepEqual([badSeq.status, codeOf(badSeq)], [400, 'INVALID_ARGUMENT']);
  const ok = await put(leader.http, 'g', 'fine');
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(await readFrom(leader.http, 'g'), 'fine');
});

test('compare-and-swap and exactly-once sessions', async () => {
  const leader = await waitForLeader();
  const cas = (expect: string | null, value: string | null): Promise<HttpReply> =>
    httpJson(leader.http, { method: 'POST', path: `${kvPath('c')}/cas`, body: { expect, value } });
  assert.deepEqual((await cas(null, 'a')).body, { key: 'c', swapped: true });
  assert.deepEqual((await cas(null, 'b')).body, { key: 'c', swapped: false });
  const headers = { 'x-tessera-client': '424242', 'x-tessera-seq': '1' };
  const once = { method: 'POST', path: `${kvPath('c')}/cas`, headers } as const;
  const first = await httpJson(leader.http, { ...once, body: { expect: 'a', value: 'z' } });
  assert.deepEqual(first.body, { key: 'c', swapped: true });
  // The retry of the same session and sequence is answered from the first attempt.
  const retry = await httpJson(leader.http, { ...once, body: { expect: 'a', value: 'z' } });
  assert.deepEqual(retry.body, { key: 'c', swapped: true });
  assert.equal(await readFrom(leader.http, 'c'), 'z');
});

test('scans page through a key range in byte order, from any node', async () => {
  const leader = await waitForLeader();
  const keys = Array.from({ length: 25 }, (_, i) => `scan/${String(i).padStart(2, '0')}`);
  for (const k of keys) assert.equal((await put(leader.http, k, `v-${k}`)).status, 200);
  for (const node of nodes.values()) {
    const seen: string[] = [];
    let start: string | null = 'scan/';
    for (let page = 0; start !== null && page < 20; page++) {
      const q: URLSearchParams = new URLSearchParams({ start, end: 'scan0', limit: '10' });
      const endpoints = [node.http, ...liveEndpoints().filter((e) => e !== node.http)];
      const r = await requestFollowingLeader(endpoints, { method: 'GET', path: `/v1/kv?${q}` });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const body = r.body as { pairs: { key: string; value: string }[]; next: string | null };
      assert.ok(body.pairs.length <= 10);
      for (const p of body.pairs) {
        assert.equal(p.value, `v-${p.key}`);
        seen.push(p.key);
      }
      start = body.next;
    }
    assert.deepEqual(seen, keys, `node ${node.id}`);
  }
  const bad = await httpJson(leader.http, { method: 'GET', path: '/v1/kv?limit=0' });
  assert.equal(bad.status, 400);
  assert.equal(codeOf(bad), 'INVALID_ARGUMENT');
});

test('every node serves Prometheus metrics', async () => {
  const leader = await waitForLeader();
  const res = await fetch(`http://${leader.http}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^tessera_raft_is_leader\{range="2"\} 1$/m);
  assert.match(text, /^tessera_raft_term\{range="1"\} [1-9]\d*$/m);
  assert.match(text, /^tessera_raft_commit_index\{range="2"\} [1-9]\d*$/m);
  assert.match(text, /^tessera_ranges_hosted 2$/m);
  assert.match(
    text,
    /^tessera_http_requests_total\{method="PUT",route="\/v1\/kv\/:key",code="200"\} [1-9]\d*$/m,
  );
  assert.match(text, /^tessera_log_sync_seconds_count [1-9]\d*$/m);
});

test('after SIGKILL of the leader a new leader keeps every acknowledged write', async () => {
  const old = await waitForLeader();
  await killNode(old);
  const leader = await waitForLeader();
  assert.notEqual(leader.id, old.id);
  for (let i = 0; i < KEYS; i++) assert.equal(await readFrom(leader.http, `k${i}`), `v${i}`);
  const r = await requestFollowingLeader(liveEndpoints(), {
    method: 'PUT',
    path: kvPath('after-failover'),
    body: { value: 'yes' },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));

  // The killed node restarts from its disk and catches up.
  startNode(old);
  const w = await requestFollowingLeader(liveEndpoints(), {
    method: 'PUT',
    path: kvPath('after-restart'),
    body: { value: 'caught-up' },
  });
  assert.equal(w.status, 200, JSON.stringify(w.body));
  const deadline = Date.now() + LEADER_WAIT_MS;
  let seen: unknown = undefined;
  while (Date.now() < deadline && seen !== 'caught-up') {
    const g = await httpJson(old.http, {
      method: 'GET',
      path: `${kvPath('after-restart')}?consistency=serializable`,
      timeoutMs: 500,
    }).catch(() => null);
    seen = g?.status === 200 ? (g.body as { value: unknown }).value : undefined;
    if (seen !== 'caught-up') await sleep(100);
  }
  assert.equal(seen, 'caught-up', `restarted node did not catch up\n${old.output}`);
  assert.equal(await readFrom(old.http, 'k7'), 'v7');
});
