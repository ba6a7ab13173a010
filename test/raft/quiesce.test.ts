// Quiescence (RaftConfig.quiesce): an idle group goes quiet, anything that
// needs it wakes it, and a quiet leader's lease still expires. Asserted
// through the messages the cores emit, on the in-memory Network of harness.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { logIndex, nodeId, term } from '../../src/core/ids.ts';
import { DEFAULT_RAFT_CONFIG } from '../../src/raft/raft.ts';
import type { RaftConfig } from '../../src/raft/raft.ts';
import type { Message, MsgHeartbeat } from '../../src/raft/types.ts';
import { Network } from './harness.ts';

const ET = DEFAULT_RAFT_CONFIG.electionTimeoutTicks;
const LEASE_TICKS = ET - DEFAULT_RAFT_CONFIG.leaseMarginTicks;
/** Enough rounds for an idle group to go quiet: a few heartbeat intervals. */
const SETTLE_TICKS = 8;

type Overrides = Partial<Omit<RaftConfig, 'id' | 'rng'>>;

/** A 3-node cluster with quiescence on, node 1 elected. */
function quietCluster(config: Overrides = {}): Network {
  const net = Network.create(3, { config: { quiesce: true, ...config } });
  net.elect(1);
  return net;
}

function quiet(net: Network, id: number): boolean {
  return net.raft(id).status().quiet;
}

/** Messages queued by the Readies of every node (flushed now, not delivered). */
function sent(net: Network): Message[] {
  net.flush();
  return [...net.queue];
}

function heartbeatFrom1(to: number, commit: number, t: number, quiesce: boolean): MsgHeartbeat {
  return {
    type: 'heartbeat',
    from: nodeId(1),
    to: nodeId(to),
    term: term(t),
    commit: logIndex(commit),
    context: '',
    sentTick: 1000,
    ...(quiesce ? { quiesce: true } : {}),
  };
}

describe('quiescence', () => {
  it('is off by default: an idle leader keeps sending heartbeats', () => {
    const net = Network.create(3);
    net.elect(1);
    net.tickAll(SETTLE_TICKS);
    const before = net.delivered.length;
    net.tickAll(10);
    assert.equal(quiet(net, 1), false);
    assert.ok(net.delivered.length > before);
    assert.ok(!net.delivered.some((m) => m.type === 'heartbeat' && m.quiesce === true));
  });

  it('an idle leader goes quiet with a quiesce heartbeat, then sends nothing', () => {
    const net = quietCluster();
    net.tickAll(SETTLE_TICKS);
    for (const id of [1, 2, 3]) assert.equal(quiet(net, id), true, `node ${id} quiet`);
    const q = Network.only(net.delivered, 'heartbeat').filter((m) => m.quiesce === true);
    assert.deepEqual(
      q.map((m) => [m.to, m.commit]),
      [
        [2, 2],
        [3, 2],
      ],
      'one quiesce heartbeat per follower, carrying the commit (= last) index',
    );
    const answers = Network.only(net.delivered, 'heartbeat-resp').filter((m) => m.quiesce);
    assert.equal(answers.length, 2, 'both followers answered that they went quiet');
    const before = net.delivered.length;
    net.tickAll(10 * ET);
    assert.equal(net.delivered.length, before, 'a quiet group exchanges no message');
    assert.equal(net.raft(1).status().role, 'leader', 'check-quorum does not depose it');
    for (const id of [2, 3]) assert.equal(net.raft(id).status().term, 2, 'nobody campaigned');
  });

  it('a leader does not go quiet while an entry is unreplicated', () => {
    const net = quietCluster();
    net.tickAll(SETTLE_TICKS);
    // Node 3 misses everything after this proposal: its match stays behind.
    net.drop((m) => m.to === nodeId(3) || m.from === nodeId(3));
    assert.equal(net.propose(1, 'x').ok, true);
    net.tickAll(10 * ET);
    assert.equal(quiet(net, 1), false, 'node 3 does not match the last index');
    net.recover();
    net.tickAll(SETTLE_TICKS);
    assert.equal(quiet(net, 1), true, 'quiet once node 3 caught up');
    assert.deepEqual(net.node(3).sm, ['x']);
  });

  it('a follower goes quiet only on a quiesce heartbeat that matches its log', () => {
    const net = quietCluster();
    // Node 2: last index 2 (the leader's no-op), term 2. Nothing is delivered further.
    net.deliverAll();
    const f = net.raft(2);
    f.step(heartbeatFrom1(2, 1, 2, true)); // commit 1 != last index 2: another log.
    let out = sent(net).filter((m) => m.from === nodeId(2));
    assert.equal(f.status().quiet, false);
    assert.deepEqual(
      out.map((m) => [m.type, m.type === 'heartbeat-resp' ? m.quiesce : undefined]),
      [['heartbeat-resp', undefined]],
      'answers without the quiesce flag: the leader must stay awake',
    );
    net.queue = [];
    f.step(heartbeatFrom1(2, 2, 2, false)); // matches, but not a quiesce heartbeat
    assert.equal(f.status().quiet, false);
    f.step(heartbeatFrom1(2, 2, 2, true)); // matches: commit = last = 2, of term 2
    out = sent(net).filter((m) => m.from === nodeId(2));
    assert.equal(f.status().quiet, true);
    assert.equal(Network.only(out, 'heartbeat-resp').at(-1)?.quiesce, true, 'says it went quiet');
    // A quiet follower's election timer is stopped.
    net.queue = [];
    net.tick(2, 10 * ET);
    assert.deepEqual(sent(net), []);
    assert.equal(f.status().role, 'follower');
    // Any other message wakes it: here an ordinary heartbeat.
    f.step(heartbeatFrom1(2, 2, 2, false));
    assert.equal(f.status().quiet, false);
  });

  it('a quiesce heartbeat refused by a follower wakes the leader', () => {
    // Node 3 runs without quiescence: it answers quiesce heartbeats without the flag.
    const net = new Network([1, 2, 3].map(nodeId), {
      configFor: (id) => ({ quiesce: id !== nodeId(3) }),
    });
    net.elect(1);
    net.tickAll(SETTLE_TICKS);
    const quiesceRounds = () =>
      Network.only(net.delivered, 'heartbeat').filter((m) => m.quiesce && m.to === nodeId(3));
    assert.ok(quiesceRounds().length > 0, 'the leader tried');
    const before = net.delivered.length;
    net.tickAll(5 * ET);
    assert.equal(quiet(net, 3), false, 'quiescence is off on node 3');
    // The leader goes on heartbeating node 3, so node 3 never campaigns.
    const hb = Network.only(net.delivered.slice(before), 'heartbeat').filter(
      (m) => m.to === nodeId(3),
    );
    assert.ok(hb.length >= (5 * ET) / DEFAULT_RAFT_CONFIG.heartbeatIntervalTicks - 1);
    assert.equal(net.raft(3).status().term, 2);
    assert.equal(net.leader(), nodeId(1));
  });

  it('a proposal wakes the leader: heartbeats at once, then quiet again when idle', () => {
    const net = quietCluster();
    net.tickAll(SETTLE_TICKS);
    assert.equal(net.propose(1, 'y').ok, true);
    assert.equal(quiet(net, 1), false);
    const out = sent(net);
    assert.deepEqual(
      out.map((m) => `${m.type}->${m.to}`),
      ['heartbeat->2', 'heartbeat->3', 'app->2', 'app->3'],
    );
    net.deliverAll();
    for (const id of [2, 3]) assert.equal(quiet(net, id), false, 'the append woke the followers');
    net.tickAll(SETTLE_TICKS);
    for (const id of [1, 2, 3]) assert.equal(quiet(net, id), true);
    for (const id of [1, 2, 3]) assert.deepEqual(net.node(id).sm, ['y']);
  });

  it('a read on a quiet follower wakes it and the leader, and is answered', () => {
    const net = quietCluster();
    net.tickAll(SETTLE_TICKS);
    assert.deepEqual(net.raft(3).readIndex('r1'), { ok: true });
    assert.equal(quiet(net, 3), false);
    net.deliverAll();
    assert.equal(quiet(net, 1), false, 'the forwarded read woke the leader');
    assert.deepEqual(net.node(3).readStates, [{ index: 2, context: 'r1' }]);
    net.tickAll(SETTLE_TICKS);
    assert.equal(quiet(net, 1), true);
  });

  it('transfer and campaign wake the node', () => {
    const net = quietCluster();
    net.tickAll(SETTLE_TICKS);
    net.raft(1).transferLeadership(nodeId(2));
    assert.equal(quiet(net, 1), false);
    net.deliverAll();
    assert.equal(net.leader(), nodeId(2));
    net.tickAll(SETTLE_TICKS);
    assert.equal(quiet(net, 2), true);
    net.raft(3).campaign();
    assert.equal(quiet(net, 3), false);
  });

  it('unquiesce() restarts the election timer from zero', () => {
    const net = quietCluster();
    net.tickAll(SETTLE_TICKS);
    net.tick(2, 10 * ET);
    assert.deepEqual(sent(net), [], 'quiet: no campaign however long');
    net.raft(2).unquiesce();
    assert.equal(quiet(net, 2), false);
    net.tick(2, ET - 1);
    assert.deepEqual(sent(net), [], 'no campaign before an election timeout');
    net.tick(2, ET);
    const votes = Network.only(sent(net), 'vote');
    assert.deepEqual(
      votes.map((m) => [m.to, m.pre]),
      [
        [1, true],
        [3, true],
      ],
      'a pre-vote campaign within [ET, 2ET) ticks of waking',
    );
  });

  it('quiet followers of a crashed leader elect a new one after unquiesce()', () => {
    const net = quietCluster();
    net.tickAll(SETTLE_TICKS);
    net.crash(1);
    net.tickAll(10 * ET);
    assert.equal(net.leader(), undefined, 'quiet followers never notice by themselves');
    // The host's node liveness finds node 1 down and wakes its quiet followers.
    net.raft(2).unquiesce();
    net.raft(3).unquiesce();
    net.tickAll(3 * ET);
    const leader = net.leader();
    assert.ok(leader === nodeId(2) || leader === nodeId(3), `leader ${leader}`);
    assert.equal(net.raft(leader).status().term, 3);
  });

  it('check-quorum counts from waking: a woken leader cut off steps down', () => {
    const net = quietCluster();
    net.tickAll(SETTLE_TICKS);
    net.isolate(1);
    net.tick(1, 10 * ET);
    assert.equal(net.raft(1).status().role, 'leader', 'quiet: not deposed for being quiet');
    net.raft(1).unquiesce();
    net.tick(1, ET - 1);
    assert.equal(
      net.raft(1).status().role,
      'leader',
      'answers before the quiet spell do not count',
    );
    net.tick(1, 1);
    assert.equal(net.raft(1).status().role, 'follower');
  });
});

describe('quiescence and the leader lease', () => {
  function leaseCluster(extra: Overrides = {}): Network {
    const net = quietCluster({ readMode: 'lease', ...extra });
    net.tickAll(SETTLE_TICKS);
    assert.equal(quiet(net, 1), true);
    return net;
  }

  it('the quiesce round renews the lease; it then ages while quiet', () => {
    const net = leaseCluster();
    assert.equal(net.raft(1).leaseValid(), true, 'renewed by the acked quiesce heartbeat');
    net.tick(1, LEASE_TICKS);
    assert.equal(quiet(net, 1), true);
    assert.equal(net.raft(1).leaseValid(), false, 'quiet ticks count against the lease');
  });

  it('a read on a quiet leader with an aged lease waits for a fresh heartbeat round', () => {
    const net = leaseCluster();
    net.tick(1, LEASE_TICKS + 5);
    net.raft(1).readIndex('r1');
    const out = sent(net);
    assert.deepEqual(net.node(1).readStates, [], 'not served from the aged lease');
    const rounds = Network.only(out, 'heartbeat').filter((m) => m.context !== '');
    assert.equal(rounds.length, 2, 'a ReadIndex round to both followers');
    net.deliverAll();
    assert.deepEqual(net.node(1).readStates, [{ index: 2, context: 'r1' }]);
  });

  it('a quiet leader cut off never serves a lease read once its lease aged', () => {
    const net = leaseCluster();
    net.isolate(1);
    net.tick(1, LEASE_TICKS); // the others may elect a new leader from here on
    net.raft(1).readIndex('stale');
    net.deliverAll();
    assert.deepEqual(net.node(1).readStates, [], 'no read from a lease not renewed in time');
    // Waking did not renew the lease: still no read however long it waits.
    net.tick(1, 3);
    net.deliverAll();
    assert.deepEqual(net.node(1).readStates, []);
    assert.equal(net.raft(1).leaseValid(), false);
  });
});
