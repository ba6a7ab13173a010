// Unit tests of the pure Raft core, asserted through the messages it emits and
// the state it ends in. Most run on the in-memory Network of harness.ts; a few
// step crafted messages into a lone core to pin an exact exchange.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { LogIndex } from '../../src/core/ids.ts';
import { logIndex, NO_NODE, nodeId, term } from '../../src/core/ids.ts';
import { SeededRng } from '../../src/core/rng.ts';
import type { CanaryName } from '../../src/raft/canaries.ts';
import { isCanaryName } from '../../src/raft/canaries.ts';
import type { DurableState, RaftConfig } from '../../src/raft/raft.ts';
import { bootstrapSnapshot, DEFAULT_RAFT_CONFIG, Raft } from '../../src/raft/raft.ts';
import type {
  ConfState,
  Entry,
  HardState,
  Message,
  MsgAppResp,
  MsgVote,
  MsgVoteResp,
  Ready,
} from '../../src/raft/types.ts';
import { bytes, entry, ids, MemoryStorage, Network, text } from './harness.ts';

const ET = DEFAULT_RAFT_CONFIG.electionTimeoutTicks;
const HB = DEFAULT_RAFT_CONFIG.heartbeatIntervalTicks;
const n = nodeId;

function hs(t: number, vote: number, commit: number): HardState {
  return { term: term(t), vote: n(vote), commit: logIndex(commit) };
}

/** A lone core, for stepping crafted messages. */
function standalone(
  id: number,
  durable: DurableState,
  cfg: Partial<Omit<RaftConfig, 'id' | 'rng'>> = {},
): Raft {
  return new Raft(
    { ...DEFAULT_RAFT_CONFIG, ...cfg, id: n(id), rng: new SeededRng(1000 + id) },
    durable,
  );
}

/** Takes the next Ready and acknowledges it (nothing to apply in these tests but log entries). */
function drain(r: Raft): Ready {
  const rd = r.ready();
  r.advance(rd);
  return rd;
}

function vote(from: number, to: number, t: number, lastIndex: number, lastTerm: number): MsgVote {
  return {
    type: 'vote',
    from: n(from),
    to: n(to),
    term: term(t),
    pre: false,
    lastIndex: logIndex(lastIndex),
    lastTerm: term(lastTerm),
    transfer: false,
  };
}

function voteResp(from: number, to: number, t: number, pre: boolean, reject = false): MsgVoteResp {
  return { type: 'vote-resp', from: n(from), to: n(to), term: term(t), pre, reject };
}

function appResp(
  from: number,
  to: number,
  t: number,
  index: number,
  reject?: { hint: number; logTerm: number },
): MsgAppResp {
  return {
    type: 'app-resp',
    from: n(from),
    to: n(to),
    term: term(t),
    index: logIndex(index),
    reject: reject !== undefined,
    rejectHint: logIndex(reject?.hint ?? 0),
    logTerm: term(reject?.logTerm ?? 0),
  };
}

const of = Network.only;

/**
 * Canaries by name, checked at run time: src/raft/canaries.ts is edited
 * concurrently, so a test of a canary that no longer exists is skipped (with
 * the reason) instead of breaking the build.
 */
function canaries(...names: string[]): ReadonlySet<CanaryName> {
  for (const name of names) assert.ok(isCanaryName(name), `unknown canary ${name}`);
  return new Set(names as CanaryName[]);
}
const ifCanary = (name: string): { skip: string | false } => ({
  skip: isCanaryName(name)
    ? false
    : `canary '${name}' is no longer defined in src/raft/canaries.ts`,
});
const idxs = (es: readonly Entry[]): number[] => es.map((e) => e.index);
const confOf = (voters: number[], outgoing: number[] = [], learners: number[] = []): ConfState => ({
  voters: ids(...voters),
  votersOutgoing: ids(...outgoing),
  learners: ids(...learners),
});

// -----------------------------------------------------------------------------

describe('elections', () => {
  it('a single-node cluster elects itself and commits a proposal at once', () => {
    const net = Network.create(1);
    net.raft(1).campaign();
    net.deliverAll();
    const st = net.raft(1).status();
    assert.equal(st.role, 'leader');
    assert.equal(st.term, 2);
    assert.equal(st.commit, 2, 'the no-op of term 2 commits alone');
    assert.equal(net.delivered.length, 0, 'no peer, no message');

    const r = net.propose(1, 'x');
    assert.deepEqual(r, { ok: true, index: 3, term: 2 });
    net.deliverAll();
    const rd = net.node(1).readies.at(-1)!;
    assert.deepEqual(idxs(rd.entries), [3]);
    assert.deepEqual(idxs(rd.committedEntries), [3], 'committed in the Ready that persists it');
    assert.equal(rd.hardState?.commit, 3);
    assert.deepEqual(net.node(1).sm, ['x']);
    assert.equal(net.node(1).storage.hardState.commit, 3);
    assert.equal(net.node(1).storage.lastIndex(), 3);
  });

  it('a single node elects itself by ticking within two election timeouts', () => {
    const net = Network.create(1);
    net.tickAll(2 * ET);
    assert.equal(net.raft(1).status().role, 'leader');
    assert.equal(net.raft(1).status().term, 2);
  });

  it('3 nodes: pre-vote for term+1 first, terms change only with the real vote', () => {
    const net = Network.create(3);
    net.warmUp();
    net.raft(1).campaign();
    net.flush();
    // Pre-votes ask for term 2 but nobody's term moves.
    const pre = of(net.queue, 'vote');
    assert.deepEqual(
      pre.map((m) => [m.to, m.term, m.pre, m.lastIndex, m.lastTerm]),
      [
        [2, 2, true, 1, 1],
        [3, 2, true, 1, 1],
      ],
    );
    assert.equal(net.raft(1).status().role, 'pre-candidate');
    assert.equal(net.raft(1).status().term, 1);
    assert.equal(net.node(1).readies.at(-1)!.hardState, null, 'a pre-vote persists nothing');
    net.deliver();
    net.flush();
    const grants = of(net.queue, 'vote-resp');
    assert.deepEqual(
      grants.map((m) => [m.from, m.term, m.pre, m.reject]),
      [
        [2, 2, true, false],
        [3, 2, true, false],
      ],
    );
    for (const id of [1, 2, 3]) {
      assert.equal(net.raft(id).status().term, 1, `node ${id} still in term 1 after pre-vote`);
      assert.equal(net.raft(id).status().vote, NO_NODE);
    }
    // The first grant wins the pre-vote: the real election starts in term 2.
    net.deliver();
    net.flush();
    assert.equal(net.raft(1).status().role, 'candidate');
    assert.equal(net.raft(1).status().term, 2);
    const rd = net.node(1).readies.at(-1)!;
    assert.deepEqual(rd.hardState, hs(2, 1, 1), 'own vote persisted with the vote requests');
    assert.deepEqual(
      of(rd.messages, 'vote').map((m) => [m.to, m.term, m.pre]),
      [
        [2, 2, false],
        [3, 2, false],
      ],
    );
    net.deliverAll();
    assert.equal(net.leader(), 1);
    for (const id of [1, 2, 3]) assert.equal(net.raft(id).status().term, 2);
    // Every vote request of node 1: the pre-votes strictly before the real ones.
    const sent = of(net.delivered, 'vote').filter((m) => m.from === 1);
    assert.deepEqual(
      sent.map((m) => m.pre),
      [true, true, false, false],
    );
    // The no-op of term 2 is committed on the leader.
    assert.equal(net.raft(1).status().commit, 2);
  });

  it('a follower rejects a candidate whose log is less up to date (§5.4.1)', () => {
    const durable = (): DurableState => ({
      hardState: hs(2, 0, 1),
      snapshot: bootstrapSnapshot(ids(1, 2, 3), new Uint8Array(0)),
      entries: [entry(2, 2, 'a'), entry(3, 2, 'b')],
    });
    const cfg = { checkQuorum: false, preVote: false };
    // Longer log but an older last term: rejected.
    const r = standalone(2, durable(), cfg);
    r.step(vote(1, 2, 3, 9, 1));
    let rd = drain(r);
    assert.deepEqual(of(rd.messages, 'vote-resp'), [voteResp(2, 1, 3, false, true)]);
    assert.equal(r.status().term, 3, 'the higher term is adopted');
    assert.equal(r.status().vote, NO_NODE, 'but no vote is cast');
    // Same last term, shorter log: rejected.
    r.step(vote(3, 2, 3, 2, 2));
    rd = drain(r);
    assert.deepEqual(of(rd.messages, 'vote-resp'), [voteResp(2, 3, 3, false, true)]);
    // Same last term, same length: granted.
    r.step(vote(3, 2, 3, 3, 2));
    rd = drain(r);
    assert.deepEqual(of(rd.messages, 'vote-resp'), [voteResp(2, 3, 3, false)]);
    assert.equal(r.status().vote, 3);
  });

  it(
    'canary vote-without-log-check: the stale candidate gets the vote',
    ifCanary('vote-without-log-check'),
    () => {
      const r = standalone(
        2,
        {
          hardState: hs(2, 0, 1),
          snapshot: bootstrapSnapshot(ids(1, 2, 3), new Uint8Array(0)),
          entries: [entry(2, 2, 'a'), entry(3, 2, 'b')],
        },
        { checkQuorum: false, preVote: false, bugs: canaries('vote-without-log-check') },
      );
      r.step(vote(1, 2, 3, 9, 1));
      assert.deepEqual(of(drain(r).messages, 'vote-resp'), [voteResp(2, 1, 3, false)]);
      assert.equal(r.status().vote, 1);
    },
  );

  it('one vote per term; a repeated request gets the same answer', () => {
    const r = standalone(
      2,
      {
        hardState: hs(2, 0, 1),
        snapshot: bootstrapSnapshot(ids(1, 2, 3), new Uint8Array(0)),
        entries: [],
      },
      { checkQuorum: false, preVote: false },
    );
    r.step(vote(1, 2, 3, 1, 1));
    assert.deepEqual(of(drain(r).messages, 'vote-resp'), [voteResp(2, 1, 3, false)]);
    // Another candidate of the same term, even with a better log: rejected.
    r.step(vote(3, 2, 3, 5, 2));
    assert.deepEqual(of(drain(r).messages, 'vote-resp'), [voteResp(2, 3, 3, false, true)]);
    // The same candidate again (a retransmission): granted again.
    r.step(vote(1, 2, 3, 1, 1));
    assert.deepEqual(of(drain(r).messages, 'vote-resp'), [voteResp(2, 1, 3, false)]);
    assert.equal(r.status().vote, 1);
    // A new term frees the vote.
    r.step(vote(3, 2, 4, 1, 1));
    assert.deepEqual(of(drain(r).messages, 'vote-resp'), [voteResp(2, 3, 4, false)]);
    assert.deepEqual([r.status().term, r.status().vote], [4, 3]);
  });

  it('a granted vote is in the hard state of the same Ready as the vote-resp, and durable before it is sent', () => {
    const r = standalone(
      2,
      {
        hardState: hs(1, 0, 1),
        snapshot: bootstrapSnapshot(ids(1, 2, 3), new Uint8Array(0)),
        entries: [],
      },
      { checkQuorum: false, preVote: false },
    );
    r.step(vote(1, 2, 2, 1, 1));
    assert.ok(r.hasReady());
    const rd = r.ready();
    assert.deepEqual(rd.hardState, hs(2, 1, 1));
    assert.deepEqual(rd.messages, [voteResp(2, 1, 2, false)]);
    r.advance(rd);
    assert.equal(r.hasReady(), false);

    // In the network: when node 2's grant is queued, its storage already holds the vote.
    const net = Network.create(3);
    net.warmUp();
    net.raft(1).campaign();
    let checked = 0;
    for (let i = 0; i < 10 && net.leader() === undefined; i++) {
      net.flush();
      for (const m of of(net.queue, 'vote-resp')) {
        if (m.pre || m.reject) continue;
        const durable = net.node(m.from).storage.hardState;
        assert.deepEqual([durable.term, durable.vote], [m.term, m.to]);
        const rdOf = net.node(m.from).readies.find((x) => x.messages.includes(m))!;
        assert.deepEqual([rdOf.hardState?.term, rdOf.hardState?.vote], [m.term, m.to]);
        checked++;
      }
      net.deliver();
    }
    assert.equal(checked, 2);
  });

  it('a proposal on a follower is refused with NOT_LEADER and the leader hint', () => {
    const net = Network.create(3);
    assert.deepEqual(net.propose(2, 'x'), { ok: false, code: 'NOT_LEADER', leaderHint: NO_NODE });
    assert.deepEqual(net.raft(2).readIndex('r'), {
      ok: false,
      code: 'NOT_LEADER',
      leaderHint: NO_NODE,
    });
    net.elect(1);
    net.tickAll(HB); // a heartbeat tells every follower who leads
    assert.deepEqual(net.propose(2, 'x'), { ok: false, code: 'NOT_LEADER', leaderHint: 1 });
    assert.deepEqual(net.propose(3, 'x'), { ok: false, code: 'NOT_LEADER', leaderHint: 1 });
    net.deliverAll();
    assert.equal(net.raft(1).status().lastIndex, 2, 'nothing was forwarded or appended');
  });
});

// -----------------------------------------------------------------------------

describe('commitment (Raft §5.4.2, figure 8)', () => {
  const voters = ids(1, 2, 3, 4, 5);

  /**
   * Node 1 restarts in term 3 holding entry 2 of term 2 (written by the
   * leader of term 2, itself), wins term 4 with votes from 2 and 3, and
   * appends its no-op at index 3. msgBytesMax 1 sends one entry per append,
   * so entry 2 can reach a majority without entry 3.
   */
  function leaderOfTerm4(bugs: string[] = []): Raft {
    const r = standalone(
      1,
      {
        hardState: hs(3, 0, 1),
        snapshot: bootstrapSnapshot(voters, new Uint8Array(0)),
        entries: [entry(2, 2, 'xx')],
      },
      { checkQuorum: false, msgBytesMax: 1, bugs: canaries(...bugs) },
    );
    r.campaign();
    const pre = of(drain(r).messages, 'vote');
    assert.deepEqual(
      pre.map((m) => [m.to, m.term, m.pre, m.lastIndex, m.lastTerm]),
      [2, 3, 4, 5].map((to) => [to, 4, true, 2, 2]),
    );
    r.step(voteResp(2, 1, 4, true));
    r.step(voteResp(3, 1, 4, true));
    assert.equal(r.status().role, 'candidate');
    drain(r);
    r.step(voteResp(2, 1, 4, false));
    r.step(voteResp(3, 1, 4, false));
    assert.equal(r.status().role, 'leader');
    assert.equal(r.status().term, 4);
    const apps = of(drain(r).messages, 'app');
    assert.deepEqual(
      apps.map((m) => [m.to, m.index, m.logTerm, idxs(m.entries)]),
      [2, 3, 4, 5].map((to) => [to, 2, 2, [3]]),
      'the no-op of term 4 goes out after entry 2',
    );
    // Followers 2 and 3 do not have entry 2 yet: they reject, and get it alone.
    for (const f of [2, 3]) {
      r.step(appResp(f, 1, 4, 2, { hint: 1, logTerm: 1 }));
      const again = of(drain(r).messages, 'app');
      assert.deepEqual(
        again.map((m) => [m.to, m.index, m.logTerm, idxs(m.entries)]),
        [[f, 1, 1, [2]]],
      );
    }
    return r;
  }

  it('a term-2 entry on a majority is not committed by counting; it commits with the term-4 entry', () => {
    const r = leaderOfTerm4();
    r.step(appResp(2, 1, 4, 2));
    r.step(appResp(3, 1, 4, 2));
    // Nodes 1, 2 and 3 (a majority of 5) hold entry 2 of term 2 ...
    assert.equal(r.progressOf(n(2))!.match, 2);
    assert.equal(r.progressOf(n(3))!.match, 2);
    assert.equal(r.log.term(logIndex(2)), 2);
    // ... but the leader of term 4 must not count it committed.
    assert.equal(r.status().commit, 1);
    let rd = drain(r);
    assert.deepEqual(rd.committedEntries, []);
    assert.equal(rd.hardState, null);
    // Entry 3 (term 4) reaches follower 2: still only 2 of 5 hold it.
    r.step(appResp(2, 1, 4, 3));
    assert.equal(r.status().commit, 1);
    // And follower 3: a majority holds the term-4 entry, both commit together.
    r.step(appResp(3, 1, 4, 3));
    assert.equal(r.status().commit, 3);
    rd = drain(r);
    assert.deepEqual(idxs(rd.committedEntries), [2, 3]);
    assert.equal(text(rd.committedEntries[0]!.data), 'xx');
    assert.deepEqual(rd.hardState, hs(4, 1, 3));
  });

  it(
    'canary commit-previous-term: the term-2 entry is committed by counting',
    ifCanary('commit-previous-term'),
    () => {
      const r = leaderOfTerm4(['commit-previous-term']);
      r.step(appResp(2, 1, 4, 2));
      assert.equal(r.status().commit, 1, 'only 2 of 5 so far');
      r.step(appResp(3, 1, 4, 2));
      assert.equal(r.status().commit, 2, 'the canary bites');
      assert.deepEqual(idxs(drain(r).committedEntries), [2]);
    },
  );

  /**
   * Figure 8 end to end: with the canary, node 1 applies its term-2 entry,
   * crashes, and node 5 (entry 2 of term 3) is elected and overwrites it:
   * two different entries applied at index 2. Without it nothing unsafe
   * happens.
   */
  function figure8(bugs: string[]): Network {
    const boot = bootstrapSnapshot(voters, new Uint8Array(0));
    const store = (t: number, v: number, entries: Entry[]): MemoryStorage =>
      new MemoryStorage({ hardState: hs(t, v, 1), snapshot: boot, entries });
    const net = new Network(
      voters,
      { config: { checkQuorum: false, msgBytesMax: 1, bugs: canaries(...bugs) }, strict: false },
      new Map([
        [n(1), store(3, 0, [entry(2, 2, 'xx')])],
        [n(2), store(3, 5, [])],
        [n(3), store(3, 5, [])],
        [n(4), store(3, 5, [])],
        [n(5), store(3, 5, [entry(2, 3, 'y')])],
      ]),
    );
    net.cut(1, 4);
    net.cut(1, 5);
    // Entry 3 (term 4) is lost on its way to anyone who already holds entry 2.
    net.drop(
      (m) =>
        m.type === 'app' &&
        m.entries.some((e) => e.index === 3) &&
        net.raft(m.to).log.lastIndex() >= 2,
    );
    net.raft(1).campaign();
    net.deliverAll();
    assert.equal(net.leader(), 1);
    assert.equal(net.raft(1).status().term, 4);
    assert.deepEqual(net.logTerms(2), [2]);
    assert.deepEqual(net.logTerms(3), [2]);
    net.crash(1);
    net.recover();
    for (let i = 0; i < 3 && net.leader() === undefined; i++) {
      net.raft(5).campaign();
      net.deliverAll();
    }
    assert.equal(net.leader(), 5);
    net.tickAll(HB);
    return net;
  }

  it('figure 8 end to end: without the canary, node 5 may overwrite entry 2 because it never committed', () => {
    const net = figure8([]);
    assert.deepEqual(net.node(1).applied, [], 'node 1 applied nothing at index 2');
    assert.deepEqual(net.violations, []);
    for (const id of [2, 3, 4, 5]) {
      assert.deepEqual(net.node(id).sm, ['y'], `node ${id}`);
      assert.deepEqual(net.logTerms(id), [3, 5]);
    }
  });

  it(
    'figure 8 end to end: with commit-previous-term two nodes apply different entries at index 2',
    ifCanary('commit-previous-term'),
    () => {
      const net = figure8(['commit-previous-term']);
      assert.deepEqual(net.node(1).sm, ['xx']);
      assert.deepEqual(net.node(5).sm, ['y']);
      assert.ok(
        net.violations.some((v) => v.startsWith('index 2:')),
        `violations: ${net.violations.join('; ')}`,
      );
    },
  );
});

// -----------------------------------------------------------------------------

describe('replication', () => {
  it('fast backtracking repairs a long divergent tail in few round trips', () => {
    const voters = ids(1, 2, 3);
    const boot = bootstrapSnapshot(voters, new Uint8Array(0));
    const common = [entry(2, 2, 'a'), entry(3, 2, 'b')];
    const good = [...common, entry(4, 4, 'c'), entry(5, 4, 'd'), entry(6, 4, 'e')];
    const stale = [...common];
    for (let i = 4; i <= 53; i++) stale.push(entry(i, 3, `old${i}`));
    const net = new Network(
      voters,
      { config: { checkQuorum: false } },
      new Map([
        [n(1), new MemoryStorage({ hardState: hs(4, 0, 3), snapshot: boot, entries: good })],
        [n(2), new MemoryStorage({ hardState: hs(4, 0, 3), snapshot: boot, entries: [...good] })],
        [n(3), new MemoryStorage({ hardState: hs(3, 0, 3), snapshot: boot, entries: stale })],
      ]),
    );
    net.raft(1).campaign();
    net.deliverAll();
    assert.equal(net.leader(), 1);
    assert.equal(net.raft(1).status().term, 5);
    const rejects = of(net.delivered, 'app-resp').filter((m) => m.from === 3 && m.reject);
    assert.equal(rejects.length, 1, 'one rejection for 50 divergent entries');
    assert.deepEqual([rejects[0]!.index, rejects[0]!.rejectHint, rejects[0]!.logTerm], [6, 6, 3]);
    const appsTo3 = of(net.delivered, 'app').filter((m) => m.to === 3);
    assert.equal(appsTo3.length, 2);
    assert.deepEqual([appsTo3[1]!.index, appsTo3[1]!.logTerm], [3, 2], 'second try at the fork');
    assert.deepEqual(net.logTerms(3), net.logTerms(1));
    assert.deepEqual(net.logTerms(3), [2, 2, 4, 4, 4, 5]);
    assert.equal(net.node(3).storage.lastIndex(), 7, 'the stale tail is gone from storage too');
  });

  it('fast backtracking: a leader far ahead finds a short follower in one round trip', () => {
    const voters = ids(1, 2, 3);
    const boot = bootstrapSnapshot(voters, new Uint8Array(0));
    const common = [entry(2, 2, 'a'), entry(3, 2, 'b')];
    const long = [...common];
    for (let i = 4; i <= 40; i++) long.push(entry(i, 5, `new${i}`));
    const short = [...common];
    for (let i = 4; i <= 30; i++) short.push(entry(i, 3, `old${i}`));
    const net = new Network(
      voters,
      { config: { checkQuorum: false } },
      new Map([
        [n(1), new MemoryStorage({ hardState: hs(5, 0, 3), snapshot: boot, entries: long })],
        [n(2), new MemoryStorage({ hardState: hs(5, 0, 3), snapshot: boot, entries: [...long] })],
        [n(3), new MemoryStorage({ hardState: hs(3, 0, 3), snapshot: boot, entries: short })],
      ]),
    );
    net.raft(1).campaign();
    net.deliverAll();
    assert.equal(net.leader(), 1);
    const rejects = of(net.delivered, 'app-resp').filter((m) => m.from === 3 && m.reject);
    assert.equal(rejects.length, 1);
    assert.deepEqual(net.logTerms(3), net.logTerms(1));
    assert.equal(net.raft(3).status().lastIndex, 41);
  });

  it('flow control: at most inflightMsgsMax appends in flight to a replicating follower', () => {
    const net = Network.create(3, { config: { inflightMsgsMax: 2 } });
    net.elect(1);
    const leader = net.raft(1);
    assert.equal(leader.progressOf(n(2))!.state, 'replicate');
    for (let i = 0; i < 10; i++) assert.ok(net.propose(1, `v${i}`).ok);
    net.flush();
    const to2 = of(net.queue, 'app').filter((m) => m.to === 2);
    assert.deepEqual(
      to2.map((m) => idxs(m.entries)),
      [[3], [4]],
      'two appends, then paused',
    );
    assert.equal(of(net.queue, 'app').filter((m) => m.to === 3).length, 2);
    assert.equal(leader.progressOf(n(2))!.inflights.count(), 2);
    assert.equal(leader.progressOf(n(2))!.isPaused(), true);
    // Follower 2 gets both appends and acks them; node 3 hears nothing yet.
    net.deliver((m) => m.to === 2);
    net.flush();
    net.deliver((m) => m.from === 2);
    net.flush();
    // The first ack frees one slot, which the rest of the log fills in one append.
    const more = of(net.queue, 'app').filter((m) => m.to === 2);
    assert.deepEqual(
      more.map((m) => idxs(m.entries)),
      [[5, 6, 7, 8, 9, 10, 11, 12]],
    );
    assert.equal(leader.progressOf(n(2))!.match, 4);
    assert.equal(leader.status().commit, 4, 'entries 3 and 4 are on a majority (1 and 2)');
    net.deliverAll();
    assert.equal(leader.status().commit, 12);
    net.tickAll(HB);
    for (const id of [1, 2, 3]) {
      assert.deepEqual(
        net.node(id).sm,
        Array.from({ length: 10 }, (_, i) => `v${i}`),
      );
    }
  });
});

// -----------------------------------------------------------------------------

describe('check-quorum and pre-vote', () => {
  it('an isolated leader steps down after an election timeout without a quorum', () => {
    const net = Network.create(3);
    net.elect(1);
    net.isolate(1);
    // The first check-quorum round still counts the acks of the election.
    net.tick(1, ET);
    net.flush();
    assert.equal(net.raft(1).status().role, 'leader');
    net.tick(1, ET - 1);
    net.flush();
    assert.equal(net.raft(1).status().role, 'leader');
    net.tick(1);
    net.flush();
    const st = net.raft(1).status();
    assert.deepEqual([st.role, st.term, st.leader], ['follower', 2, NO_NODE]);
    // The others elect a new leader among themselves.
    net.tickAll(3 * ET);
    const l = net.leader();
    assert.ok(l === 2 || l === 3, `leader ${l}`);
    assert.equal(net.raft(l).status().term, 3);
    net.recover();
    net.tickAll(HB);
    assert.deepEqual(
      [net.raft(1).status().term, net.raft(1).status().leader],
      [3, l],
      'the old leader follows the new one',
    );
  });

  it('without check-quorum an isolated leader stays leader', () => {
    const net = Network.create(3, { config: { checkQuorum: false } });
    net.elect(1);
    net.isolate(1);
    net.tick(1, 5 * ET);
    net.flush();
    assert.equal(net.raft(1).status().role, 'leader');
  });

  it('pre-vote: an isolated follower that comes back does not bump the term', () => {
    const net = Network.create(3);
    net.elect(1);
    net.isolate(3);
    net.tickAll(5 * ET);
    // Node 3 did campaign (pre-votes, all lost) without changing its term.
    const tried = net.events.filter(
      (e) => e.kind === 'send' && e.message.type === 'vote' && e.message.from === 3,
    );
    assert.ok(tried.length >= 2, `node 3 sent ${tried.length} vote requests`);
    assert.ok(tried.every((e) => e.kind === 'send' && e.message.type === 'vote' && e.message.pre));
    assert.equal(net.raft(3).status().term, 2);
    assert.equal(net.leader(), 1);
    net.recover();
    net.tickAll(ET);
    for (const id of [1, 2, 3]) {
      const st = net.raft(id).status();
      assert.deepEqual([st.term, st.leader], [2, 1], `node ${id}`);
    }
  });

  it('without pre-vote the returning follower disrupts the cluster (the contrast)', () => {
    const net = Network.create(3, { config: { preVote: false } });
    net.elect(1);
    net.isolate(3);
    net.tickAll(5 * ET);
    assert.ok(net.raft(3).status().term > 2, 'node 3 bumped its term alone');
    net.recover();
    net.tickAll(3 * ET);
    assert.ok(net.raft(1).status().term > 2, 'the cluster had to move to a higher term');
  });
});

// -----------------------------------------------------------------------------

describe('reads', () => {
  it('ReadIndex on the leader is answered only after a quorum acks a heartbeat round', () => {
    const net = Network.create(3);
    net.elect(1);
    assert.deepEqual(net.raft(1).readIndex('ctx1'), { ok: true });
    net.flush();
    const hbs = of(net.queue, 'heartbeat');
    assert.equal(hbs.length, 2);
    assert.ok(hbs.every((m) => m.context !== ''));
    assert.deepEqual(net.node(1).readStates, []);
    net.deliver(); // heartbeats reach the followers
    net.flush();
    assert.deepEqual(net.node(1).readStates, [], 'no answer before the acks arrive');
    assert.equal(of(net.queue, 'heartbeat-resp').length, 2);
    net.deliver((m) => m.from === 2); // one ack + the leader itself = quorum
    net.flush();
    assert.deepEqual(net.node(1).readStates, [{ index: 2, context: 'ctx1' }]);
    net.deliverAll();
    assert.equal(net.node(1).readStates.length, 1, 'answered once');
  });

  it('a read on a new leader waits until an entry of its term is committed', () => {
    const net = Network.create(3);
    net.warmUp();
    net.raft(1).campaign();
    while (net.raft(1).status().role !== 'leader') {
      net.flush();
      net.deliver();
    }
    assert.equal(net.raft(1).status().commit, 1, 'the no-op is not committed yet');
    net.raft(1).readIndex('early');
    net.flush();
    assert.deepEqual(
      of(net.queue, 'heartbeat').filter((m) => m.context !== ''),
      [],
      'no read round before the no-op commits',
    );
    net.deliverAll();
    assert.deepEqual(net.node(1).readStates, [{ index: 2, context: 'early' }]);
  });

  it('a ReadIndex on a follower is forwarded and answered through the leader', () => {
    const net = Network.create(3);
    net.elect(1);
    net.tickAll(HB);
    assert.deepEqual(net.raft(2).readIndex('ctx2'), { ok: true });
    net.flush();
    assert.deepEqual(
      of(net.queue, 'read-index').map((m) => [m.from, m.to, m.context]),
      [[2, 1, 'ctx2']],
    );
    net.deliverAll();
    assert.deepEqual(net.node(2).readStates, [{ index: 2, context: 'ctx2' }]);
    assert.deepEqual(net.node(1).readStates, []);
    const resp = of(net.delivered, 'read-index-resp');
    assert.deepEqual(
      resp.map((m) => [m.from, m.to, m.index, m.reject]),
      [[1, 2, 2, false]],
    );
    // The answer came after a heartbeat round with acks.
    const at = net.delivered.indexOf(resp[0]!);
    const acks = of(net.delivered.slice(0, at), 'heartbeat-resp').filter((m) => m.context !== '');
    assert.ok(acks.length >= 1);
  });

  it('lease reads: served without a round trip while the lease holds, not after', () => {
    const net = Network.create(3, { config: { readMode: 'lease' } });
    net.elect(1);
    const leader = net.raft(1);
    assert.equal(leader.leaseValid(), false, 'no heartbeat acked yet');
    net.tick(1, HB); // heartbeat round
    net.deliverAll();
    assert.equal(leader.leaseValid(), true);
    leader.readIndex('lease1');
    net.flush();
    assert.deepEqual(net.node(1).readStates, [{ index: 2, context: 'lease1' }]);
    assert.deepEqual(net.queue, [], 'no round trip');
    // No more acks: the lease lasts electionTimeout - margin ticks from the heartbeat's send.
    net.isolate(1);
    const lease = ET - DEFAULT_RAFT_CONFIG.leaseMarginTicks;
    net.tick(1, lease - 1);
    net.flush();
    assert.equal(leader.leaseValid(), true);
    net.tick(1);
    net.flush();
    assert.equal(leader.status().role, 'leader', 'still leader (check-quorum has not fired)');
    assert.equal(leader.leaseValid(), false);
    leader.readIndex('lease2');
    net.flush();
    assert.equal(net.node(1).readStates.length, 1, 'lease2 waits for a heartbeat round');
    assert.ok(
      net.events.some(
        (e) =>
          e.kind === 'send' &&
          e.message.type === 'heartbeat' &&
          e.message.context !== '' &&
          e.dropped,
      ),
    );
  });

  it(
    'canary lease-read-without-check-quorum: an isolated leader keeps serving lease reads',
    ifCanary('lease-read-without-check-quorum'),
    () => {
      const net = Network.create(3, {
        config: { bugs: canaries('lease-read-without-check-quorum') },
      });
      net.elect(1);
      net.isolate(1);
      net.tick(1, 5 * ET);
      net.flush();
      assert.equal(net.raft(1).status().role, 'leader', 'check-quorum is off');
      assert.equal(net.raft(1).leaseValid(), true);
      net.raft(1).readIndex('stale');
      net.flush();
      assert.deepEqual(net.node(1).readStates, [{ index: 2, context: 'stale' }]);
    },
  );

  it('an aborted leadership transfer does not revive the lease (the target may have won)', () => {
    const net = Network.create(3, { config: { readMode: 'lease' } });
    net.elect(1);
    net.tick(1, HB);
    net.deliverAll();
    assert.equal(net.raft(1).leaseValid(), true);
    net.raft(1).transferLeadership(n(2));
    net.flush();
    const timeoutNow = net.queue.filter((m) => m.type === 'timeout-now');
    assert.equal(timeoutNow.length, 1);
    net.queue = net.queue.filter((m) => m.type !== 'timeout-now');
    assert.equal(net.raft(1).leaseValid(), false, 'no lease during the transfer');
    // Heartbeats keep being acked while the TimeoutNow is in flight.
    for (let i = 0; i < 4; i++) {
      net.tick(1);
      net.deliverAll();
    }
    // Node 1 is cut off; the TimeoutNow arrives; 2 wins term 3 with 3's vote and commits a write.
    net.isolate(1);
    net.queue.push(...timeoutNow);
    net.deliverAll();
    assert.equal(net.leader(), 2);
    const w = net.propose(2, 'new');
    assert.ok(w.ok);
    net.deliverAll();
    assert.deepEqual(net.node(2).sm, ['new'], 'the write is applied and acknowledged');
    // Node 1 aborts the transfer after an election timeout and is asked for a read.
    net.tick(1, ET - 4);
    net.flush();
    assert.equal(net.raft(1).status().role, 'leader', 'node 1 still believes it leads term 2');
    net.raft(1).readIndex('after-write');
    net.flush();
    // A linearizable read issued after the write completed must see it.
    for (const rs of net.node(1).readStates) {
      assert.ok(rs.index >= w.index, `read served at index ${rs.index} < write index ${w.index}`);
    }
    assert.equal(net.raft(1).leaseValid(), false);
  });
});

// -----------------------------------------------------------------------------

describe('leadership transfer', () => {
  it('the target becomes leader of the next term; proposals meanwhile are dropped', () => {
    const net = Network.create(3);
    net.elect(1);
    net.raft(1).transferLeadership(n(2));
    assert.deepEqual(net.propose(1, 'x'), {
      ok: false,
      code: 'PROPOSAL_DROPPED',
      leaderHint: 1,
    });
    net.flush();
    assert.deepEqual(
      net.queue.map((m) => [m.type, m.from, m.to, m.term]),
      [['timeout-now', 1, 2, 2]],
    );
    net.deliverAll();
    assert.equal(net.leader(), 2);
    assert.equal(net.raft(2).status().term, 3);
    const votes = of(net.delivered, 'vote').filter((m) => m.from === 2);
    assert.deepEqual(
      votes.map((m) => [m.to, m.term, m.pre, m.transfer]),
      [
        [1, 3, false, true],
        [3, 3, false, true],
      ],
      'no pre-vote, and the transfer flag that bypasses the followers lease',
    );
    assert.deepEqual([net.raft(1).status().role, net.raft(1).status().leader], ['follower', 2]);
    assert.ok(net.propose(2, 'y').ok);
    net.deliverAll();
    net.tickAll(HB);
    for (const id of [1, 2, 3]) assert.deepEqual(net.node(id).sm, ['y']);
  });

  it('a lagging target is caught up first; proposals are refused until it takes over', () => {
    const net = Network.create(3);
    net.elect(1);
    net.cut(1, 2);
    for (const v of ['a', 'b', 'c']) assert.ok(net.propose(1, v).ok);
    net.deliverAll();
    assert.equal(net.raft(2).status().lastIndex, 2);
    net.recover();
    net.raft(1).transferLeadership(n(2));
    net.deliverAll();
    let refused = 0;
    for (let i = 0; i < 2 * ET && net.leader() === 1; i++) {
      const r = net.propose(1, `late${i}`);
      assert.deepEqual(r, { ok: false, code: 'PROPOSAL_DROPPED', leaderHint: 1 });
      refused++;
      net.tickAll(1);
    }
    assert.ok(refused >= 1);
    assert.equal(net.leader(), 2);
    assert.equal(net.raft(2).status().term, 3);
    assert.equal(net.node(2).sm.join(','), 'a,b,c');
    const tn = net.delivered.filter((m) => m.type === 'timeout-now');
    assert.equal(tn.length, 1);
  });

  it('a transfer to an unreachable target is abandoned after an election timeout', () => {
    const net = Network.create(3);
    net.elect(1);
    net.isolate(2);
    net.raft(1).transferLeadership(n(2));
    net.deliverAll();
    assert.equal(net.propose(1, 'x').ok, false);
    net.tick(1, ET);
    net.deliverAll();
    assert.equal(net.raft(1).status().role, 'leader');
    assert.deepEqual(net.propose(1, 'x'), { ok: true, index: 3, term: 2 });
  });
});

// -----------------------------------------------------------------------------

describe('snapshots', () => {
  it('a lagging follower catches up from a snapshot after the leader compacted its log', () => {
    const net = Network.create(3);
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 5; i++) assert.ok(net.propose(1, `s${i}`).ok);
    net.deliverAll();
    assert.equal(net.raft(1).status().commit, 7);
    const snap = net.compact(1);
    assert.deepEqual([snap.meta.index, snap.meta.term], [7, 2]);
    assert.equal(net.raft(1).log.firstIndex(), 8);
    assert.equal(net.node(1).storage.entries.length, 0);
    net.recover();
    net.tickAll(3 * HB);
    const snaps = of(net.delivered, 'snap');
    assert.equal(snaps.length, 1);
    assert.deepEqual([snaps[0]!.to, snaps[0]!.snapshot.meta.index], [3, 7]);
    assert.deepEqual(net.node(3).sm, ['s0', 's1', 's2', 's3', 's4']);
    assert.equal(net.node(3).storage.snapshot?.meta.index, 7);
    // Replication goes on by appends after the snapshot.
    assert.ok(net.propose(1, 'after').ok);
    net.deliverAll();
    net.tickAll(HB);
    for (const id of [1, 2, 3]) {
      assert.equal(net.raft(id).status().commit, 8, `node ${id}`);
      assert.equal(net.node(id).sm.at(-1), 'after');
    }
    assert.equal(of(net.delivered, 'snap').length, 1, 'one snapshot was enough');
  });

  it('a follower restarted from a received snapshot keeps it', () => {
    const net = Network.create(3);
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 3; i++) net.propose(1, `s${i}`);
    net.deliverAll();
    net.compact(1);
    net.recover();
    net.tickAll(3 * HB);
    net.crash(3);
    net.restart(3);
    const st = net.raft(3).status();
    assert.equal(st.applied, 5);
    assert.equal(net.raft(3).log.firstIndex(), 6);
    assert.deepEqual(net.node(3).sm, ['s0', 's1', 's2']);
  });
});

// -----------------------------------------------------------------------------

describe('membership', () => {
  const addLearner = (id: number) =>
    ({ kind: 'change', steps: [{ type: 'add-learner', node: n(id) }] }) as const;
  const addVoter = (id: number) =>
    ({ kind: 'change', steps: [{ type: 'add-voter', node: n(id) }] }) as const;
  const remove = (id: number) =>
    ({ kind: 'change', steps: [{ type: 'remove-node', node: n(id) }] }) as const;

  it('learner, promotion through joint consensus, removal of the leader', () => {
    const net = Network.create(3);
    net.elect(1);
    net.addEmptyNode(n(4));

    // 1. Add node 4 as a learner: it gets the log (first a snapshot), never a vote request.
    assert.ok(net.proposeConfChange(1, addLearner(4)).ok);
    net.deliverAll();
    net.tickAll(HB);
    assert.deepEqual(net.raft(1).status().conf, confOf([1, 2, 3], [], [4]));
    assert.deepEqual(net.raft(4).status().conf, confOf([1, 2, 3], [], [4]));
    assert.equal(net.raft(4).status().lastIndex, net.raft(1).status().lastIndex);
    assert.equal(of(net.delivered, 'snap').filter((m) => m.to === 4).length, 1);

    // A learner does not count for commitment.
    net.isolate(2);
    net.isolate(3);
    const p = net.propose(1, 'only-learner');
    assert.ok(p.ok);
    net.deliverAll();
    assert.equal(net.raft(4).status().lastIndex, p.index, 'the learner has the entry');
    assert.ok(net.raft(1).status().commit < p.index, 'but it is not committed');
    net.recover();
    net.tickAll(3 * HB);
    assert.ok(net.raft(1).status().commit >= p.index);
    assert.deepEqual(net.node(4).sm, ['only-learner']);

    // A learner is not asked to vote.
    net.raft(1).transferLeadership(n(2));
    net.deliverAll();
    assert.equal(net.leader(), 2);
    assert.deepEqual(
      of(net.delivered, 'vote').filter((m) => m.to === 4),
      [],
    );
    net.tickAll(HB);

    // 2. Promote node 4: joint consensus, then left automatically.
    const before = net.node(2).confs.length;
    assert.ok(net.proposeConfChange(2, addVoter(4)).ok);
    assert.deepEqual(net.proposeConfChange(2, addLearner(5)), {
      ok: false,
      code: 'CONF_CHANGE_IN_PROGRESS',
      leaderHint: 2,
    });
    net.deliverAll();
    assert.deepEqual(net.node(2).confs.slice(before), [
      confOf([1, 2, 3, 4], [1, 2, 3]),
      confOf([1, 2, 3, 4]),
    ]);
    net.tickAll(HB);
    for (const id of [1, 2, 3, 4]) {
      assert.deepEqual(net.raft(id).status().conf, confOf([1, 2, 3, 4]), `node ${id}`);
      assert.deepEqual(net.node(id).confs.at(-2), confOf([1, 2, 3, 4], [1, 2, 3]));
    }

    // 3. Remove the leader itself: it leads through the joint phase, then steps down.
    net.events = [];
    assert.ok(net.proposeConfChange(2, remove(2)).ok);
    net.deliverAll();
    const ev2 = net.events.filter((e) =>
      e.kind === 'send' || e.kind === 'deliver' ? e.message.from === 2 : e.id === 2,
    );
    const applyJoint = ev2.findIndex((e) => e.kind === 'apply' && e.conf?.votersOutgoing.length);
    const applyLeave = ev2.findIndex(
      (e) => e.kind === 'apply' && e.conf !== undefined && e.conf.votersOutgoing.length === 0,
    );
    const stepDown = ev2.findIndex((e) => e.kind === 'soft' && e.role === 'follower');
    assert.ok(applyJoint >= 0 && applyLeave > applyJoint, 'joint, then leave-joint applied');
    assert.ok(stepDown > applyLeave, 'stepped down only after applying the leave-joint change');
    assert.deepEqual(net.node(2).confs.slice(-2), [
      confOf([1, 3, 4], [1, 2, 3, 4]),
      confOf([1, 3, 4]),
    ]);
    assert.equal(net.raft(2).status().role, 'follower');
    assert.equal(net.leader(), undefined);
    // The others elect a new leader among themselves.
    net.tickAll(3 * ET);
    const l = net.leader();
    assert.ok(l === 1 || l === 3 || l === 4, `leader ${l}`);
    assert.ok(net.raft(l).status().term > 3);
    for (const id of [1, 3, 4]) {
      assert.deepEqual(net.raft(id).status().conf, confOf([1, 3, 4]), `node ${id}`);
    }
    const last2 = net.raft(2).status().lastIndex;
    const q = net.propose(l, 'after-removal');
    assert.ok(q.ok);
    net.deliverAll();
    net.tickAll(HB);
    for (const id of [1, 3, 4]) assert.equal(net.node(id).sm.at(-1), 'after-removal');
    assert.equal(net.raft(2).status().lastIndex, last2, 'the removed node gets nothing more');
    assert.equal(net.raft(2).status().role, 'follower', 'and never campaigns');
  });

  it('a conf change while one is pending is refused with CONF_CHANGE_IN_PROGRESS', () => {
    const net = Network.create(3);
    net.elect(1);
    net.addEmptyNode(n(4));
    assert.ok(net.proposeConfChange(1, addLearner(4)).ok);
    assert.deepEqual(net.proposeConfChange(1, remove(3)), {
      ok: false,
      code: 'CONF_CHANGE_IN_PROGRESS',
      leaderHint: 1,
    });
    net.deliverAll();
    // Applied: the next one is accepted.
    assert.ok(net.proposeConfChange(1, addVoter(4)).ok);
    net.deliverAll();
    // And an invalid one is refused as such.
    assert.deepEqual(net.proposeConfChange(1, addVoter(4)), {
      ok: false,
      code: 'INVALID_ARGUMENT',
      leaderHint: 1,
    });
  });
});

// -----------------------------------------------------------------------------

describe('restart', () => {
  it('a node restarted from durable storage keeps its term, vote, log and commit', () => {
    const net = Network.create(3);
    net.elect(1);
    net.propose(1, 'a');
    net.deliverAll();
    net.tickAll(HB);
    const before = net.raft(2).status();
    net.crash(2);
    net.restart(2);
    const after = net.raft(2).status();
    assert.deepEqual(
      [after.term, after.vote, after.commit, after.lastIndex, after.role],
      [before.term, 1, before.commit, before.lastIndex, 'follower'],
    );
    assert.equal(after.term, 2);
    // It re-applies the committed entries from its log.
    net.flush();
    assert.deepEqual(net.node(2).sm, ['a'], 'state machine rebuilt from the log');
    assert.deepEqual(
      net.node(2).applied.map((e) => e.index),
      [2, 3],
      'committed entries re-applied after the restart',
    );
  });

  it('a restarted node ignores vote requests for an election timeout (check-quorum)', () => {
    const net = Network.create(3);
    net.elect(1);
    net.crash(2);
    net.restart(2);
    const r = net.raft(2);
    r.step(vote(3, 2, 3, 5, 2));
    assert.deepEqual(drain(r).messages, []);
    assert.equal(r.status().term, 2);
  });

  function restartedVoter(bugs: string[]): Raft {
    const storage = new MemoryStorage({
      hardState: hs(2, 1, 1),
      snapshot: bootstrapSnapshot(ids(1, 2, 3), new Uint8Array(0)),
      entries: [entry(2, 2)],
    });
    return standalone(
      2,
      { hardState: storage.hardState, snapshot: storage.snapshot, entries: storage.entries },
      { checkQuorum: false, preVote: false, bugs: canaries(...bugs) },
    );
  }

  it('the persisted vote binds after a restart: a second candidate of the term is rejected', () => {
    const r = restartedVoter([]);
    assert.equal(r.status().vote, 1);
    r.step(vote(3, 2, 2, 2, 2));
    assert.deepEqual(drain(r).messages, [voteResp(2, 3, 2, false, true)]);
  });

  it(
    'canary forget-vote-on-restart: the restarted node votes twice in term 2',
    ifCanary('forget-vote-on-restart'),
    () => {
      const r = restartedVoter(['forget-vote-on-restart']);
      assert.equal(r.status().vote, NO_NODE);
      r.step(vote(3, 2, 2, 2, 2));
      assert.deepEqual(drain(r).messages, [voteResp(2, 3, 2, false)]);
      assert.equal(r.status().vote, 3);
    },
  );

  it(
    'in the network: with forget-vote-on-restart, node 2 restarts with no vote',
    ifCanary('forget-vote-on-restart'),
    () => {
      const net = Network.create(3, {
        config: { bugs: canaries('forget-vote-on-restart') },
      });
      net.elect(1);
      assert.equal(net.raft(2).status().vote, 1);
      net.crash(2);
      net.restart(2);
      assert.deepEqual([net.raft(2).status().term, net.raft(2).status().vote], [2, NO_NODE]);
    },
  );
});

// -----------------------------------------------------------------------------

describe('heartbeat commit index', () => {
  const voters = ids(1, 2, 3);
  const boot = bootstrapSnapshot(voters, new Uint8Array(0));

  /**
   * Node 3 holds x, y, z of term 3 (never committed) after the committed a, b.
   * Node 1 wins term 4 with node 2 and commits its no-op and w at 4 and 5;
   * its appends to node 3 are lost, so only heartbeats reach node 3.
   */
  function divergentFollower(bugs: string[]): Network {
    const common = [entry(2, 2, 'a'), entry(3, 2, 'b')];
    const net = new Network(
      voters,
      { config: { checkQuorum: false, bugs: canaries(...bugs) }, strict: false },
      new Map([
        [n(1), new MemoryStorage({ hardState: hs(3, 0, 3), snapshot: boot, entries: common })],
        [n(2), new MemoryStorage({ hardState: hs(3, 0, 3), snapshot: boot, entries: [...common] })],
        [
          n(3),
          new MemoryStorage({
            hardState: hs(3, 0, 2),
            snapshot: boot,
            entries: [...common, entry(4, 3, 'x'), entry(5, 3, 'y'), entry(6, 3, 'z')],
          }),
        ],
      ]),
    );
    net.drop((m) => m.type === 'app' && m.to === 3);
    net.raft(1).campaign();
    net.deliverAll();
    assert.equal(net.leader(), 1);
    assert.ok(net.propose(1, 'w').ok);
    net.deliverAll();
    assert.equal(net.raft(1).status().commit, 5);
    net.tick(1, HB);
    net.deliverAll();
    return net;
  }

  it('a heartbeat never tells a follower to commit past its known match', () => {
    const net = divergentFollower([]);
    const hb = of(net.delivered, 'heartbeat').filter((m) => m.to === 3);
    assert.ok(hb.length >= 1);
    assert.ok(
      hb.every((m) => m.commit === 0),
      'node 3 matched nothing yet',
    );
    assert.equal(net.raft(3).status().commit, 2);
    assert.deepEqual(net.node(3).sm, ['a']);
    assert.deepEqual(net.violations, []);
  });

  it(
    'canary heartbeat-commit-beyond-match: the follower commits its divergent tail',
    ifCanary('heartbeat-commit-beyond-match'),
    () => {
      const net = divergentFollower(['heartbeat-commit-beyond-match']);
      assert.equal(net.raft(3).status().commit, 5);
      assert.deepEqual(net.node(3).sm, ['a', 'b', 'x', 'y']);
      assert.ok(
        net.violations.some((v) => v.startsWith('index 4:')),
        `violations: ${net.violations.join('; ')}`,
      );
    },
  );
});

// -----------------------------------------------------------------------------

describe('snapshot acknowledgement (regressions)', () => {
  const voters = ids(1, 2, 3);
  const boot = bootstrapSnapshot(voters, new Uint8Array(0));

  it('a follower whose log already holds the snapshot index acks only up to that index', () => {
    // Follower 3 holds 2..3 of term 2 (committed) and 4..6 of term 3 (never committed).
    const r = standalone(
      3,
      {
        hardState: hs(4, 1, 2),
        snapshot: boot,
        entries: [
          entry(2, 2, 'a'),
          entry(3, 2, 'b'),
          entry(4, 3, 'x'),
          entry(5, 3, 'y'),
          entry(6, 3, 'z'),
        ],
      },
      { checkQuorum: false },
    );
    r.step({
      type: 'snap',
      from: n(1),
      to: n(3),
      term: term(4),
      snapshot: {
        meta: { index: logIndex(3), term: term(2), conf: boot.meta.conf },
        data: bytes(''),
      },
    });
    const resp = of(drain(r).messages, 'app-resp');
    assert.equal(resp.length, 1);
    assert.equal(resp[0]!.reject, false);
    assert.ok(
      resp[0]!.index <= 3,
      `acked index ${resp[0]!.index}: entries 4..6 (term 3) were never matched against the leader`,
    );
  });

  it('end to end: a leader never commits an entry that only it holds', () => {
    // Term 2: node 1 led and committed a, b (and later compacted them). Term 3:
    // node 3 led with node 2's vote, appended x, y, z and crashed before
    // replicating them or persisting its commit index.
    const net = new Network(
      voters,
      { config: { checkQuorum: false, preVote: true }, strict: false },
      new Map([
        [
          n(1),
          new MemoryStorage({
            hardState: hs(3, 0, 3),
            snapshot: {
              meta: { index: logIndex(3), term: term(2), conf: boot.meta.conf },
              data: bytes(JSON.stringify(['a', 'b'])),
            },
            entries: [],
          }),
        ],
        [
          n(2),
          new MemoryStorage({
            hardState: hs(3, 3, 3),
            snapshot: boot,
            entries: [entry(2, 2, 'a'), entry(3, 2, 'b')],
          }),
        ],
        [
          n(3),
          new MemoryStorage({
            hardState: hs(3, 3, 2),
            snapshot: boot,
            entries: [
              entry(2, 2, 'a'),
              entry(3, 2, 'b'),
              entry(4, 3, 'x'),
              entry(5, 3, 'y'),
              entry(6, 3, 'z'),
            ],
          }),
        ],
      ]),
    );
    // Node 1 wins term 4 (votes 1, 2) but its appends are all lost.
    net.drop((m) => m.type === 'app' && m.from === 1);
    net.raft(1).campaign();
    net.deliverAll();
    assert.equal(net.leader(), 1);
    assert.equal(net.raft(3).status().term, 4, 'node 3 saw the term-4 vote request');
    assert.ok(net.propose(1, 'w').ok);
    net.deliverAll();
    // A heartbeat node 1 sent as leader of term 2 arrives late at node 3.
    const late: Message = {
      type: 'heartbeat',
      from: n(1),
      to: n(3),
      term: term(2),
      commit: logIndex(2),
      context: '',
      sentTick: 0,
    };
    net.raft(3).step(late);
    net.deliverAll();
    // Only node 1 holds entries 4 and 5 of term 4: they must not be committed.
    assert.equal(net.raft(1).status().commit, 3);
    assert.ok((net.raft(1).progressOf(n(3))!.match as LogIndex) <= net.raft(1).status().lastIndex);
    net.tick(1, HB);
    net.deliverAll();
    assert.deepEqual(net.violations, []);
  });
});
