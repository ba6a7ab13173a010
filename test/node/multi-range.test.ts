/**
 * A cluster split into several ranges (multi-Raft on real processes): keys
 * land in the range that holds them, scans continue across ranges, status
 * lists every range, and a member joins (learner, snapshot catch-up,
 * promotion on every range) and leaves again through the client.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TesseraClient } from '../../src/client/client.ts';
import type { NodeStatus } from '../../src/api/http-api.ts';
import { LocalCluster } from '../support/local-cluster.ts';

const TEST_TIMEOUT_MS = 120_000;
const cluster = new LocalCluster('tessera-multi-', [1, 2, 3, 4], ['g', 'p'], [4]);
const founders = (): string[] => [1, 2, 3].map((id) => cluster.nodes.get(id)!.http);

before(async () => {
  await cluster.init();
});

after(async () => {
  await cluster.dispose();
});

async function statusOf(http: string): Promise<NodeStatus> {
  const res = await fetch(`http://${http}/v1/status`);
  assert.equal(res.status, 200);
  return (await res.json()) as NodeStatus;
}

test(
  'keys go to the range that holds them; scans cross ranges',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await cluster.waitForLeader(30_000);
    const c = new TesseraClient({ endpoints: founders() });
    const keys = ['apple', 'banana', 'grape', 'kiwi', 'pear', 'plum', 'zucchini'];
    for (const k of keys) await c.put(k, `v-${k}`);
    const ranges = await c.ranges();
    assert.deepEqual(
      ranges.map((r) => [r.id, r.start, r.end]),
      [
        [2, '', 'g'],
        [3, 'g', 'p'],
        [4, 'p', null],
      ],
    );
    const all = await c.scan('', null, 100);
    assert.deepEqual(
      all.pairs.map((p) => p.key),
      keys,
    );
    assert.equal(all.next, null);
    // A limit that ends inside the second range continues from there.
    const page = await c.scan('', null, 3);
    assert.deepEqual(
      page.pairs.map((p) => p.key),
      ['apple', 'banana', 'grape'],
    );
    const rest = await c.scan(page.next!, 'z', 100);
    assert.deepEqual(
      rest.pairs.map((p) => p.key),
      ['kiwi', 'pear', 'plum'],
    );
    // Status lists the meta range and every data range.
    const st = await statusOf(founders()[0]!);
    assert.deepEqual(
      st.ranges.map((r) => [r.id, r.kind]),
      [
        [1, 'meta'],
        [2, 'data'],
        [3, 'data'],
        [4, 'data'],
      ],
    );
  },
);

test(
  'a member joins every range by snapshot and leaves again',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await cluster.waitForLeader(30_000);
    const c = new TesseraClient({ endpoints: founders() });
    for (let i = 0; i < 50; i++) await c.put(`j${i}`, `before-${i}`);
    const n4 = cluster.nodes.get(4)!;
    cluster.start(n4);
    const added = await c.addMember({ id: 4, raft: cluster.raftAddress(4), http: n4.http });
    assert.deepEqual(added.ranges, [1, 2, 3, 4]);
    // Node 4 now holds every range as a voter and has the data written before it joined.
    // (It learns the last commits at the leaders' next messages: wait, bounded.)
    let st4 = await statusOf(n4.http);
    const joined = (st: NodeStatus): boolean =>
      st.ranges.length === 4 &&
      st.ranges.every((r) => r.voters.join() === '1,2,3,4') &&
      st.members.length === 4;
    for (let i = 0; i < 100 && !joined(st4); i++) {
      await new Promise((r) => setTimeout(r, 50));
      st4 = await statusOf(n4.http);
    }
    assert.deepEqual(
      st4.ranges.map((r) => r.id),
      [1, 2, 3, 4],
    );
    for (const r of st4.ranges) assert.deepEqual(r.voters, [1, 2, 3, 4], `range ${r.id}`);
    assert.deepEqual(
      st4.members.map((m) => m.id),
      [1, 2, 3, 4],
    );
    const via4 = new TesseraClient({ endpoints: [n4.http] });
    let seen = '';
    for (let i = 0; i < 100 && seen !== 'before-7'; i++) {
      seen = (await via4.get('j7', { consistency: 'serializable' })) ?? '';
      if (seen !== 'before-7') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(seen, 'before-7', 'the new member caught up');
    assert.equal(await via4.get('j8'), 'before-8', 'linearizable reads through the new member');
    // Adding again changes nothing (idempotent).
    await c.addMember({ id: 4, raft: cluster.raftAddress(4), http: n4.http });
    // Remove a founder; the cluster keeps serving with 1, 3 and 4.
    const removed = await c.removeMember(2);
    assert.deepEqual(removed.ranges, [2, 3, 4, 1]);
    await c.put('after-removal', 'yes');
    assert.equal(await c.get('after-removal'), 'yes');
    // Followers learn the last commits at the leaders' next messages: wait (bounded).
    let st1 = await statusOf(founders()[0]!);
    const settled = (st: NodeStatus): boolean =>
      st.ranges.every((r) => r.voters.join() === '1,3,4') &&
      st.members.map((m) => m.id).join() === '1,3,4';
    for (let i = 0; i < 100 && !settled(st1); i++) {
      await new Promise((r) => setTimeout(r, 50));
      st1 = await statusOf(founders()[0]!);
    }
    for (const r of st1.ranges) assert.deepEqual(r.voters, [1, 3, 4], `range ${r.id}`);
    assert.deepEqual(
      st1.members.map((m) => m.id),
      [1, 3, 4],
    );
  },
);

test('membership requests are validated', { timeout: TEST_TIMEOUT_MS }, async () => {
  const http = founders()[0]!;
  const put = await fetch(`http://${http}/v1/members/7`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ raft: 'nohost', http: '127.0.0.1:1' }),
  });
  assert.equal(put.status, 400);
  assert.equal(((await put.json()) as { code: string }).code, 'INVALID_ARGUMENT');
  const change = await fetch(`http://${http}/v1/ranges/2/replicas`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ change: 'explode', node: 5 }),
  });
  assert.equal(change.status, 400);
  const c = new TesseraClient({ endpoints: founders() });
  await assert.rejects(c.addMember({ id: 0, raft: 'a:1', http: 'b:2' }), /member id/);
});
