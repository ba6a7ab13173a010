// Property tests: quorum arithmetic (src/raft/quorum.ts) against dumb
// brute-force references, and the contracts of RaftLog (src/raft/log.ts).
// fast-check runs with fixed seeds so a run never varies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import type { LogIndex, NodeId } from '../../src/core/ids.ts';
import { logIndex, nodeId, term } from '../../src/core/ids.ts';
import { RaftLog } from '../../src/raft/log.ts';
import {
  hasQuorum,
  jointCommitted,
  jointVoteResult,
  majorityCommitted,
  majorityVoteResult,
} from '../../src/raft/quorum.ts';
import type { VoteResult } from '../../src/raft/quorum.ts';
import type { ConfState, Entry } from '../../src/raft/types.ts';

const RUNS = { numRuns: 2000, seed: 424242 } as const;
/** Node ids are drawn from 1..MAX_ID; match indexes from 0..MAX_INDEX. */
const MAX_ID = 10;
const MAX_INDEX = 20;
const ALL = Number.MAX_SAFE_INTEGER;

const voterSet = fc
  .uniqueArray(fc.integer({ min: 1, max: MAX_ID }), { maxLength: 7 })
  .map((xs) => xs.map(nodeId));
/** match[id - 1] is the match index of node id. */
const matches = fc.array(fc.integer({ min: 0, max: MAX_INDEX }), {
  minLength: MAX_ID,
  maxLength: MAX_ID,
});
/** Per node: granted, rejected, or not answered. */
const answers = fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), {
  minLength: MAX_ID,
  maxLength: MAX_ID,
});

const matchFn =
  (m: readonly number[]) =>
  (id: NodeId): LogIndex =>
    logIndex(m[id - 1]!);

function votesMap(a: readonly (boolean | undefined)[]): Map<NodeId, boolean> {
  const out = new Map<NodeId, boolean>();
  a.forEach((v, i) => {
    if (v !== undefined) out.set(nodeId(i + 1), v);
  });
  return out;
}

const conf = (voters: NodeId[], outgoing: NodeId[]): ConfState => ({
  voters,
  votersOutgoing: outgoing,
  learners: [],
});

// --- References ---------------------------------------------------------------

/** True if a strict majority of `voters` satisfies `p` (the empty set: vacuously true). */
function majority(voters: readonly NodeId[], p: (id: NodeId) => boolean): boolean {
  if (voters.length === 0) return true;
  return voters.filter(p).length * 2 > voters.length;
}

/** Largest i in 0..MAX_INDEX that `ok(i)` accepts, by trying them all. */
function largest(ok: (i: number) => boolean): number {
  let best = -1;
  for (let i = 0; i <= MAX_INDEX; i++) if (ok(i)) best = i;
  return best;
}

function refCommitted(voters: readonly NodeId[], m: readonly number[]): number {
  if (voters.length === 0) return ALL;
  return largest((i) => majority(voters, (id) => m[id - 1]! >= i));
}

function refJointCommitted(c: ConfState, m: readonly number[]): number {
  if (c.voters.length === 0 && c.votersOutgoing.length === 0) return ALL;
  return largest(
    (i) =>
      majority(c.voters, (id) => m[id - 1]! >= i) &&
      majority(c.votersOutgoing, (id) => m[id - 1]! >= i),
  );
}

/** Enumerates every way the missing voters could still answer. */
function refVote(
  halves: readonly (readonly NodeId[])[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const members = [...new Set(halves.flat())];
  const missing = members.filter((id) => !votes.has(id));
  let wins = 0;
  const total = 2 ** missing.length;
  for (let mask = 0; mask < total; mask++) {
    const granted = (id: NodeId): boolean => {
      const k = missing.indexOf(id);
      return k < 0 ? votes.get(id)! : ((mask >> k) & 1) === 1;
    };
    if (halves.every((h) => majority(h, granted))) wins++;
  }
  if (wins === total) return 'won';
  if (wins === 0) return 'lost';
  return 'pending';
}

// --- Quorum properties --------------------------------------------------------

describe('quorum arithmetic against brute force', () => {
  it('majorityCommitted', () => {
    fc.assert(
      fc.property(voterSet, matches, (voters, m) => {
        assert.equal(majorityCommitted(voters, matchFn(m)), refCommitted(voters, m));
      }),
      RUNS,
    );
  });

  it('jointCommitted', () => {
    fc.assert(
      fc.property(voterSet, voterSet, matches, (inc, out, m) => {
        const c = conf(inc, out);
        assert.equal(jointCommitted(c, matchFn(m)), refJointCommitted(c, m));
      }),
      RUNS,
    );
  });

  it('majorityVoteResult', () => {
    fc.assert(
      fc.property(voterSet, answers, (voters, a) => {
        const votes = votesMap(a);
        assert.equal(majorityVoteResult(voters, votes), refVote([voters], votes));
      }),
      RUNS,
    );
  });

  it('jointVoteResult', () => {
    fc.assert(
      fc.property(voterSet, voterSet, answers, (inc, out, a) => {
        const votes = votesMap(a);
        // Outside joint consensus (no outgoing set) only the incoming half decides.
        const halves = out.length === 0 ? [inc] : [inc, out];
        assert.equal(jointVoteResult(conf(inc, out), votes), refVote(halves, votes));
      }),
      RUNS,
    );
  });

  it('hasQuorum', () => {
    fc.assert(
      fc.property(voterSet, voterSet, answers, (inc, out, a) => {
        const acked = (id: NodeId): boolean => a[id - 1] === true;
        const expected = majority(inc, acked) && majority(out, acked);
        assert.equal(hasQuorum(conf(inc, out), acked), expected);
      }),
      RUNS,
    );
  });

  it('known values', () => {
    const m = [5, 3, 1, 0, 9];
    const ids = (...xs: number[]): NodeId[] => xs.map(nodeId);
    assert.equal(majorityCommitted(ids(1, 2, 3), matchFn(m)), 3);
    assert.equal(majorityCommitted(ids(1, 2, 3, 4), matchFn(m)), 1);
    assert.equal(majorityCommitted(ids(1, 2, 3, 4, 5), matchFn(m)), 3);
    assert.equal(majorityCommitted([], matchFn(m)), ALL);
    assert.equal(jointCommitted(conf(ids(1, 5), ids(2, 3, 4)), matchFn(m)), 1);
    assert.equal(majorityVoteResult(ids(1, 2, 3), votesMap([true, undefined, false])), 'pending');
    assert.equal(majorityVoteResult(ids(1, 2, 3), votesMap([true, true])), 'won');
    assert.equal(majorityVoteResult(ids(1, 2, 3, 4), votesMap([true, true, false, false])), 'lost');
    assert.equal(majorityVoteResult([], new Map()), 'won');
  });
});

// --- RaftLog properties ---------------------------------------------------------

const dataOf = (index: number, t: number): Uint8Array => new TextEncoder().encode(`${index}:${t}`);

function mkEntry(index: number, t: number): Entry {
  return { index: logIndex(index), term: term(t), type: 'normal', data: dataOf(index, t) };
}

/**
 * A leader's log and a follower's log that agree on a prefix of length `k`
 * and then diverge. Leader terms are even and the follower's tail terms odd,
 * so an (index, term) pair never repeats across the fork (Log Matching). The
 * follower's log is compacted up to `offset` and committed up to `committed`
 * (offset <= committed <= k: a follower never committed past the fork).
 */
interface Scenario {
  readonly leader: number[]; // leader[i - 1] = term of index i
  readonly follower: number[];
  readonly k: number;
  readonly committed: number;
  readonly offset: number;
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    leaderSteps: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 12 }),
    tailSteps: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 8 }),
    kFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    cFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    oFrac: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ leaderSteps, tailSteps, kFrac, cFrac, oFrac }) => {
    let t = 1;
    const leader = leaderSteps.map((s) => 2 * (t += s));
    const k = Math.floor(kFrac * (leader.length + 0.999));
    let u = k === 0 ? 0 : leader[k - 1]! / 2;
    const tail = tailSteps.map((s) => 2 * (u += s) + 1);
    const follower = [...leader.slice(0, k), ...tail];
    const committed = Math.floor(cFrac * (k + 0.999));
    const offset = Math.floor(oFrac * (committed + 0.999));
    return { leader, follower, k, committed, offset };
  });

function termAt(log: readonly number[], i: number): number | undefined {
  if (i === 0) return 0;
  return log[i - 1];
}

function restore(s: Scenario): RaftLog {
  const snapshot =
    s.offset === 0
      ? null
      : {
          meta: {
            index: logIndex(s.offset),
            term: term(s.follower[s.offset - 1]!),
            conf: { voters: [nodeId(1)], votersOutgoing: [], learners: [] },
          },
          data: new Uint8Array(0),
        };
  const entries = s.follower.map((t, i) => mkEntry(i + 1, t)).slice(s.offset);
  return RaftLog.restore(snapshot, entries, logIndex(s.committed));
}

function termsOf(log: RaftLog): (number | undefined)[] {
  const out: (number | undefined)[] = [];
  for (let i = log.firstIndex() - 1; i <= log.lastIndex(); i++) out.push(log.term(logIndex(i)));
  return out;
}

describe('RaftLog properties', () => {
  it('restore keeps the invariants offset <= applied <= committed <= lastIndex', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const log = restore(s);
        assert.equal(log.lastIndex(), s.follower.length);
        assert.equal(log.firstIndex(), s.offset + 1);
        assert.equal(log.applied, s.offset);
        assert.equal(log.committed, Math.max(s.offset, s.committed));
        for (let i = s.offset; i <= s.follower.length; i++) {
          assert.equal(log.term(logIndex(i)), termAt(s.follower, i));
        }
        assert.equal(log.term(logIndex(s.follower.length + 1)), undefined);
        if (s.offset > 0) assert.equal(log.term(logIndex(s.offset - 1)), undefined);
      }),
      RUNS,
    );
  });

  it('findConflictByTerm satisfies its contract', () => {
    fc.assert(
      fc.property(
        scenario,
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 14 }),
        (s, index, t) => {
          const log = restore(s);
          const r = log.findConflictByTerm(logIndex(index), term(t));
          const top = Math.min(index, log.lastIndex());
          const offset = log.firstIndex() - 1;
          assert.ok(r <= top, `result ${r} above min(index, lastIndex) = ${top}`);
          if (index >= offset) assert.ok(r >= offset, `result ${r} below the snapshot ${offset}`);
          else assert.equal(r, index, 'below the snapshot nothing is known: index itself');
          if (r > offset) assert.ok(log.term(r)! <= t, `term at ${r} is ${log.term(r)} > ${t}`);
          for (let j = r + 1; j <= top; j++) {
            assert.ok(log.term(logIndex(j))! > t, `a larger answer ${j} existed`);
          }
        },
      ),
      RUNS,
    );
  });

  it('maybeAppend of a leader append: accepted iff (prevIndex, prevTerm) match, then consistent', () => {
    fc.assert(
      fc.property(
        scenario,
        fc.double({ min: 0, max: 1, noNaN: true }),
        // Often the whole rest of the leader's log (the common case), else a prefix of it.
        fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
        fc.integer({ min: 0, max: 14 }),
        // One append in five carries a made-up prevTerm.
        fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
        fc.integer({ min: 0, max: 14 }),
        (s, pFrac, mFrac, commitPick, wrongPrevTerm, bogusTerm) => {
          const log = restore(s);
          const nL = s.leader.length;
          const p = s.offset + Math.floor(pFrac * (nL - s.offset + 0.999));
          if (p > nL) return; // the leader's log is shorter than the snapshot: nothing to send
          const m = Math.floor(mFrac * (nL - p + 0.999));
          const entries = s.leader.slice(p, p + m).map((t, i) => mkEntry(p + 1 + i, t));
          const prevTerm = wrongPrevTerm ? bogusTerm : termAt(s.leader, p)!;
          const leaderCommit = Math.min(commitPick, nL);
          const before = termsOf(log);
          const beforeCommitted = log.committed;
          const beforeLast = log.lastIndex();
          const matches = log.term(logIndex(p)) === prevTerm;

          const r = log.maybeAppend(logIndex(p), term(prevTerm), logIndex(leaderCommit), entries);

          if (!matches) {
            assert.equal(r, undefined);
            assert.deepEqual(termsOf(log), before, 'a rejected append changes nothing');
            assert.equal(log.committed, beforeCommitted);
            assert.deepEqual(log.unstableEntries(), []);
            return;
          }
          const lastNew = p + m;
          assert.equal(r, lastNew);
          // Every entry sent is now in the log, with its term and payload.
          for (const e of entries) {
            assert.equal(log.term(e.index), e.term);
            assert.deepEqual(log.entry(e.index)?.data, e.data);
          }
          // Nothing at or before prevIndex moved.
          for (let i = log.firstIndex() - 1; i <= p; i++) {
            assert.equal(log.term(logIndex(i)), before[i - (log.firstIndex() - 1)]);
          }
          // The first index where the follower differed from the append (if any).
          let conflict = 0;
          for (const e of entries) {
            if (termAt(s.follower, e.index) !== e.term) {
              conflict = e.index;
              break;
            }
          }
          if (conflict === 0) {
            // A stale or duplicate append must not truncate: the tail survives.
            assert.equal(log.lastIndex(), beforeLast);
            assert.deepEqual(termsOf(log), before);
            assert.deepEqual(log.unstableEntries(), []);
          } else {
            assert.equal(log.lastIndex(), lastNew, 'the conflicting tail is gone');
            assert.deepEqual(
              log.unstableEntries().map((e) => e.index),
              Array.from({ length: lastNew - conflict + 1 }, (_, i) => conflict + i),
              'everything from the conflict on must be persisted again',
            );
          }
          // Log Matching: up to lastNew the follower now equals the leader
          // (unless the bogus prevTerm happened to name a follower-only entry).
          if (!wrongPrevTerm || prevTerm === termAt(s.leader, p)) {
            for (let i = log.firstIndex(); i <= lastNew; i++) {
              assert.equal(log.term(logIndex(i)), termAt(s.leader, i));
            }
          }
          assert.equal(
            log.committed,
            Math.max(beforeCommitted, Math.min(leaderCommit, lastNew)),
            'commit = max(old, min(leaderCommit, lastNew))',
          );
        },
      ),
      RUNS,
    );
  });

  it('stableTo ignores an acknowledgement for entries that were replaced', () => {
    const log = RaftLog.restore(null, [mkEntry(1, 2), mkEntry(2, 2)], logIndex(0));
    // Entries 2..3 of term 4 replace entry 2 of term 2.
    assert.equal(
      log.maybeAppend(logIndex(1), term(2), logIndex(0), [mkEntry(2, 4), mkEntry(3, 4)]),
      3,
    );
    log.stableTo(logIndex(2), term(2)); // a late ack of the old entry 2
    assert.deepEqual(
      log.unstableEntries().map((e) => [e.index, e.term]),
      [
        [2, 4],
        [3, 4],
      ],
    );
    log.stableTo(logIndex(3), term(4));
    assert.deepEqual(log.unstableEntries(), []);
  });
});
