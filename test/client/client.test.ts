/**
 * TesseraClient against a real 3-node cluster (three `tessera start` child
 * processes on free loopback ports, started as test/node/cluster.test.ts
 * does): the basic calls, leader discovery from a follower, exactly-once
 * retries, abort, no retries of validation errors, and failover after
 * SIGKILL of the leader without losing an acknowledged write. Every wait is
 * bounded; `after` kills every child it started.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { TesseraClient } from '../../src/client/client.ts';
import { randomClientId } from '../../src/client/options.ts';
import { TesseraError } from '../../src/core/errors.ts';
import { LocalCluster, type ClusterNode } from '../support/local-cluster.ts';
import { sleep } from '../../src/node/http-client.ts';

const IDS = [1, 2, 3] as const;
const LEADER_WAIT_MS = 20_000;
const TEST_TIMEOUT_MS = 60_000;

const cluster = new LocalCluster('tessera-client-', IDS);
const nodes = cluster.nodes;
const killNode = (node: ClusterNode): Promise<void> => cluster.kill(node);
const waitForLeader = (): Promise<ClusterNode> => cluster.waitForLeader(LEADER_WAIT_MS);

const allEndpoints = (): string[] => [...nodes.values()].map((n) => n.http);

/** A fetch that records every request (method, URL, session headers) before sending it. */
function countingFetch(): {
  fetch: typeof fetch;
  calls: { method: string; url: string; client?: string; seq?: string }[];
} {
  const calls: { method: string; url: string; client?: string; seq?: string }[] = [];
  const wrapped = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const h = (init?.headers ?? {}) as Record<string, string>;
    if (String(input).endsWith('/v1/ranges')) return fetch(input, init);
    calls.push({
      method: init?.method ?? 'GET',
      url: String(input),
      ...(h['x-tessera-client'] !== undefined ? { client: h['x-tessera-client'] } : {}),
      ...(h['x-tessera-seq'] !== undefined ? { seq: h['x-tessera-seq'] } : {}),
    });
    return fetch(input, init);
  };
  return { fetch: wrapped as typeof fetch, calls };
}

const isCode =
  (code: string) =>
  (e: unknown): boolean =>
    e instanceof TesseraError && e.code === code;

before(async () => {
  await cluster.init();
});

after(async () => {
  await cluster.dispose();
});

test('put, get, cas and delete', { timeout: TEST_TIMEOUT_MS }, async () => {
  await waitForLeader();
  const c = new TesseraClient({ endpoints: allEndpoints() });
  assert.equal(await c.get('basic'), null);
  await c.put('basic', 'one');
  assert.equal(await c.get('basic'), 'one');
  assert.equal(await c.get('basic', { consistency: 'serializable' }), 'one');
  assert.equal(await c.cas('basic', 'nope', 'two'), false);
  assert.equal(await c.cas('basic', 'one', 'two'), true);
  assert.equal(await c.get('basic'), 'two');
  assert.equal(await c.cas('fresh', null, 'x'), true, 'expect null means absent');
  assert.equal(await c.cas('fresh', 'x', null), true, 'value null deletes');
  assert.equal(await c.get('fresh'), null);
  await c.delete('basic');
  assert.equal(await c.get('basic'), null);
  await c.put('ünï/cødé?&', 'späce & slash');
  assert.equal(await c.get('ünï/cødé?&'), 'späce & slash');
  const st = await c.status();
  assert.equal(st.members.length, 3);
  assert.deepEqual(
    st.ranges.map((r) => [r.id, r.kind]),
    [
      [1, 'meta'],
      [2, 'data'],
    ],
  );
});

test(
  'finds the range leader from a follower endpoint only',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const leader = await waitForLeader();
    const follower = [...nodes.values()].find((n) => n !== leader && n.proc !== null)!;
    const { fetch, calls } = countingFetch();
    const c = new TesseraClient({ endpoints: [follower.http], fetch });
    await c.put('discovered', 'yes');
    // The range map (from the follower) names the range's leader: at most one
    // refusal with a hint if the follower's view was stale, then the leader.
    const hosts = calls.map((x) => new URL(x.url).host);
    assert.equal(hosts.at(-1), leader.http);
    assert.ok(hosts.length <= 2, `calls: ${hosts.join(' ')}`);
    assert.equal(c.leaderEndpoint('discovered'), `http://${leader.http}`);
    const before = calls.length;
    await c.put('discovered', 'again');
    assert.equal(await c.get('discovered'), 'again');
    assert.equal(calls.length, before + 2, 'later calls go straight to the cached leader');
    assert.ok(calls.slice(before).every((x) => new URL(x.url).host === leader.http));
  },
);

test(
  'exactly-once: a retried write is answered, not applied again',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await waitForLeader();
    const c = new TesseraClient({ endpoints: allEndpoints() });

    // The same session and sequence number twice: the second is a duplicate.
    await c.put('eo', 'A');
    const session = { client: randomClientId(), seq: 1 };
    const cas = { op: 'cas', key: 'eo', expect: 'A', value: 'B' } as const;
    assert.equal(await c.writeWithSeq(cas, session), true);
    assert.equal(await c.writeWithSeq(cas, session), true, 'answered from the first attempt');
    assert.equal(await c.writeWithSeq(cas, { ...session, seq: 2 }), false, 'a new write compares');
    assert.equal(await c.get('eo'), 'B');

    // A lost answer: the first attempt applies, its response is dropped, the client retries.
    let dropped = 0;
    const { fetch: counting, calls } = countingFetch();
    const lossy = (async (input: string | URL | Request, init?: RequestInit) => {
      const res = await counting(input, init);
      if (init?.method === 'POST' && res.ok && dropped === 0) {
        dropped += 1;
        await res.text();
        throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
      }
      return res;
    }) as typeof fetch;
    const lc = new TesseraClient({
      endpoints: allEndpoints(),
      fetch: lossy,
      backoff: { initialMs: 5 },
    });
    await lc.put('warm-up', 'x'); // finds and caches the leader
    calls.length = 0;
    // An append-like effect: applied twice it would give "B++".
    assert.equal(await lc.cas('eo', 'B', 'B+'), true);
    assert.equal(dropped, 1);
    const posts = calls.filter((x) => x.method === 'POST');
    // The lost connection also drops the cached leader, so the retry may
    // pass by a follower (NOT_LEADER) on its way back: 2 or 3 attempts.
    assert.ok(posts.length >= 2 && posts.length <= 3, `${posts.length} attempts`);
    assert.ok(posts.every((p) => p.client === posts[0]!.client && p.seq === posts[0]!.seq));
    assert.equal(await c.get('eo'), 'B+');
  },
);

test('an aborted call rejects with the signal reason', { timeout: TEST_TIMEOUT_MS }, async () => {
  // A node that accepts connections and never answers.
  const sockets = new Set<net.Socket>();
  const blackhole = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  const port = (blackhole.address() as net.AddressInfo).port;
  try {
    const c = new TesseraClient({ endpoints: [`127.0.0.1:${port}`] });
    const reason = new Error('caller gave up');
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(reason), 100);
    const t0 = performance.now();
    await assert.rejects(c.put('k', 'v', { signal: ctl.signal }), (e: unknown) => e === reason);
    assert.ok(performance.now() - t0 < 2_000);
    await assert.rejects(c.get('k', { signal: AbortSignal.timeout(100) }), {
      name: 'TimeoutError',
    });
    const ctl2 = new AbortController();
    setTimeout(() => ctl2.abort(), 50);
    await assert.rejects(c.status({ signal: ctl2.signal }), { name: 'AbortError' });
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => blackhole.close(resolve));
  }
});

test('validation errors are not retried', { timeout: TEST_TIMEOUT_MS }, async () => {
  await waitForLeader();
  const { fetch, calls } = countingFetch();
  const c = new TesseraClient({ endpoints: allEndpoints(), fetch });
  await c.put('valid', 'x');
  calls.length = 0;
  await assert.rejects(c.put('k'.repeat(1025), 'v'), isCode('KEY_TOO_LARGE'));
  assert.equal(calls.length, 1);
  await assert.rejects(c.put('big', 'x'.repeat((1 << 20) + 1)), isCode('VALUE_TOO_LARGE'));
  assert.equal(calls.length, 2);
  await assert.rejects(c.get('k'.repeat(1025)), isCode('KEY_TOO_LARGE'));
  assert.equal(calls.length, 3);
  await assert.rejects(c.put('', 'v'), isCode('INVALID_ARGUMENT'));
  assert.equal(calls.length, 3, 'an empty key is refused before sending');
});

test(
  'after SIGKILL of the leader the client keeps working and loses no acknowledged write',
  { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const old = await waitForLeader();
    const c = new TesseraClient({ endpoints: allEndpoints() });
    const acked = new Map<string, string>();
    const unknown: string[] = [];
    const writeAll = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        try {
          await c.put(`f${i}`, `v${i}`);
          acked.set(`f${i}`, `v${i}`);
        } catch (e) {
          if (!isCode('OUTCOME_UNKNOWN')(e)) throw e;
          unknown.push(`f${i}`);
        }
      }
    };
    await writeAll(0, 20);
    assert.equal(c.leaderEndpoint('f0'), `http://${old.http}`);
    // Kill the leader while writes are in flight.
    const writer = writeAll(20, 60);
    await sleep(20);
    await killNode(old);
    const t0 = performance.now();
    await writer;
    const failoverMs = performance.now() - t0;
    await writeAll(60, 70);
    assert.notEqual(c.leaderEndpoint('f0'), `http://${old.http}`);
    assert.ok(acked.size >= 60, `acknowledged ${acked.size}/70, unknown ${unknown.join(',')}`);
    for (const [k, v] of acked) assert.equal(await c.get(k), v, `acknowledged write ${k} lost`);
    const [range] = await c.ranges();
    assert.ok(range?.leaderHttp !== null && range?.leaderHttp !== old.http, 'a new range leader');
    t.diagnostic(`failover writes took ${Math.round(failoverMs)} ms`);
  },
);
