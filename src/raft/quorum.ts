/**
 * Quorum arithmetic: which index a configuration has committed, and how an
 * election stands. Pure functions over plain data, checked in tests against a
 * brute-force reference.
 */
import type { LogIndex, NodeId } from '../core/ids.ts';
import { logIndex } from '../core/ids.ts';
import type { ConfState } from './types.ts';

/** The outcome of counting votes. */
export type VoteResult = 'won' | 'lost' | 'pending';

/** Sentinel: an empty voter set "commits" everything (so it never holds back a joint quorum). */
const COMMIT_ALL = logIndex(Number.MAX_SAFE_INTEGER);

/**
 * The largest index that a majority of `voters` has matched: sort the match
 * indexes descending and take the one at position floor(n/2). A voter with no
 * known match counts as 0. An empty set returns a sentinel larger than any index.
 */
export function majorityCommitted(
  voters: readonly NodeId[],
  match: (id: NodeId) => LogIndex,
): LogIndex {
  const n = voters.length;
  if (n === 0) return COMMIT_ALL;
  const indexes = new Array<number>(n);
  for (let i = 0; i < n; i++) indexes[i] = match(voters[i]!);
  indexes.sort((a, b) => b - a);
  return logIndex(indexes[Math.floor(n / 2)]!);
}

/** Committed index of a (possibly joint) configuration: both halves must agree (thesis §4.3). */
export function jointCommitted(conf: ConfState, match: (id: NodeId) => LogIndex): LogIndex {
  const incoming = majorityCommitted(conf.voters, match);
  if (conf.votersOutgoing.length === 0) return incoming;
  const outgoing = majorityCommitted(conf.votersOutgoing, match);
  return logIndex(Math.min(incoming, outgoing));
}

/**
 * Election status in one voter set. `votes` maps a voter to its answer
 * (true = granted); voters absent from the map have not answered.
 */
export function majorityVoteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const n = voters.length;
  if (n === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(n / 2) + 1;
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

/** Election status in a (possibly joint) configuration: must win both halves. */
export function jointVoteResult(conf: ConfState, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVoteResult(conf.voters, votes);
  if (conf.votersOutgoing.length === 0) return a;
  const b = majorityVoteResult(conf.votersOutgoing, votes);
  if (a === 'lost' || b === 'lost') return 'lost';
  if (a === 'won' && b === 'won') return 'won';
  return 'pending';
}

/** True if `acks` (the set of nodes that answered) forms a quorum of `conf`. */
export function hasQuorum(conf: ConfState, acks: (id: NodeId) => boolean): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const id of conf.voters) votes.set(id, acks(id));
  for (const id of conf.votersOutgoing) votes.set(id, acks(id));
  return jointVoteResult(conf, votes) === 'won';
}

/** Every voter of either half, without duplicates, in ascending order. */
export function allVoters(conf: ConfState): NodeId[] {
  const set = new Set<NodeId>([...conf.voters, ...conf.votersOutgoing]);
  return [...set].sort((a, b) => a - b);
}

/** True when `id` votes in either half of `conf`. */
export function isVoter(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.votersOutgoing.includes(id);
}

/** True while the configuration is joint (an outgoing voter set exists). */
export function isJoint(conf: ConfState): boolean {
  return conf.votersOutgoing.length > 0;
}
