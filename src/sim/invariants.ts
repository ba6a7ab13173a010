/**
 * Raft invariants, checked after every step of every node (Raft §5.2-§5.4,
 * figure 3):
 * - election safety: at most one leader per term;
 * - log matching: two logs with an entry of the same index and term agree on
 *   everything before it (checked inductively: every (index, term) has one
 *   predecessor term and one payload across all nodes);
 * - leader completeness: a new leader's log holds every committed entry;
 * - state machine safety: no two nodes apply different entries at one index;
 * - a node's term and commit index never decrease; applied <= committed.
 */
import type { NodeId } from '../core/ids.ts';
import type { Raft } from '../raft/raft.ts';
import type { Entry } from '../raft/types.ts';

interface NodeView {
  incarnation: number;
  term: number;
  commit: number;
  role: string;
}

export class RaftInvariants {
  readonly violations: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** index -> an entry known committed there, and the lowest term in which a node saw it committed. */
  private readonly committed = new Map<number, { entry: Entry; commitTerm: number }>();
  /** index -> the entry applied there. */
  private readonly applied = new Map<number, Entry>();
  /** "index:term" -> [predecessor term, an entry with that index and term]. */
  private readonly entryIdentity = new Map<string, [number, Entry]>();
  private readonly views = new Map<NodeId, NodeView>();
  /** "voter:term" -> the candidate that voter granted its vote to. */
  private readonly votes = new Map<string, NodeId>();
  /** Highest leader term seen (for the figure-8 style checks in traces). */
  maxTerm = 0;

  constructor(private readonly now: () => number) {}

  private fail(what: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.now().toFixed(1)}ms ${what}`);
  }

  /** After any call into `raft` on a live node. */
  observe(raft: Raft, incarnation: number): void {
    const st = raft.status();
    const id = st.id;
    let v = this.views.get(id);
    if (v === undefined || v.incarnation !== incarnation) {
      v = { incarnation, term: st.term, commit: st.commit, role: 'none' };
      this.views.set(id, v);
    }
    if (st.term < v.term) this.fail(`node ${id}: term decreased ${v.term} -> ${st.term}`);
    if (st.commit < v.commit)
      this.fail(`node ${id}: commit index decreased ${v.commit} -> ${st.commit}`);
    if (st.applied > st.commit) {
      this.fail(`node ${id}: applied ${st.applied} > committed ${st.commit}`);
    }
    if (st.role === 'leader' && v.role === 'leader' && v.term === st.term && st.commit > v.commit) {
      // Raft §5.4.2: a leader advances its commit index only to an entry of its own term.
      const t = raft.log.term(st.commit);
      if (t !== st.term) {
        this.fail(
          `leader ${id} of term ${st.term} committed index ${st.commit} of term ${t} by counting replicas`,
        );
      }
    }
    for (let i = v.commit + 1; i <= st.commit; i++) {
      const e = raft.log.entry(i as never);
      if (e !== undefined) this.recordCommitted(id, e, st.term);
    }
    if (st.role === 'leader' && (v.role !== 'leader' || v.term !== st.term)) {
      this.onLeader(raft, st.term);
    }
    v.term = st.term;
    v.commit = st.commit;
    v.role = st.role;
  }

  private recordCommitted(id: NodeId, e: Entry, observedInTerm: number): void {
    const prev = this.committed.get(e.index);
    if (prev === undefined) {
      this.committed.set(e.index, { entry: e, commitTerm: observedInTerm });
    } else if (!sameEntry(prev.entry, e)) {
      this.fail(
        `node ${id}: committed entry ${e.index} has term ${e.term}, another node committed term ${prev.entry.term} there`,
      );
    } else if (observedInTerm < prev.commitTerm) {
      prev.commitTerm = observedInTerm;
    }
  }

  private onLeader(raft: Raft, term: number): void {
    const id = raft.id;
    if (term > this.maxTerm) this.maxTerm = term;
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== id) {
      this.fail(`election safety: nodes ${other} and ${id} both leader in term ${term}`);
    }
    this.leaderOfTerm.set(term, id);
    // Leader completeness (Raft §5.4): an entry committed in a term is in
    // the log of every leader of a later term.
    const first = raft.log.firstIndex();
    for (const [index, { entry: e, commitTerm }] of this.committed) {
      if (index < first || commitTerm >= term) continue;
      const t = raft.log.term(index as never);
      if (t !== e.term) {
        this.fail(
          `leader completeness: leader ${id} of term ${term} has ${t === undefined ? 'no entry' : `term ${t}`} at committed index ${index} (term ${e.term})`,
        );
        return;
      }
    }
  }

  /** Raft §5.2: each server grants at most one vote per term. */
  onVoteGranted(voter: NodeId, term: number, candidate: NodeId): void {
    const key = `${voter}:${term}`;
    const prev = this.votes.get(key);
    if (prev === undefined) this.votes.set(key, candidate);
    else if (prev !== candidate) {
      this.fail(
        `one vote per term: node ${voter} voted for ${prev} and ${candidate} in term ${term}`,
      );
    }
  }

  /** Entries a node is about to persist (its log now holds them). */
  onAppend(raft: Raft, entries: readonly Entry[]): void {
    for (const e of entries) {
      const prevTerm = e.index === 1 ? 0 : raft.log.term((e.index - 1) as never);
      if (prevTerm === undefined) continue;
      const key = `${e.index}:${e.term}`;
      const known = this.entryIdentity.get(key);
      if (known === undefined) {
        this.entryIdentity.set(key, [prevTerm, e]);
        continue;
      }
      if (known[0] !== prevTerm) {
        this.fail(
          `log matching: node ${raft.id} has (${e.index}, term ${e.term}) after term ${prevTerm}, another log after term ${known[0]}`,
        );
      } else if (!sameEntry(known[1], e)) {
        this.fail(`log matching: two different entries at index ${e.index} in term ${e.term}`);
      }
    }
  }

  /** A node applies `e` to its state machine. */
  onApply(id: NodeId, e: Entry): void {
    const prev = this.applied.get(e.index);
    if (prev === undefined) this.applied.set(e.index, e);
    else if (!sameEntry(prev, e)) {
      this.fail(
        `state machine safety: node ${id} applied term ${e.term} at index ${e.index}, another node applied term ${prev.term}`,
      );
    }
  }
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (a.term !== b.term || a.index !== b.index || a.type !== b.type) return false;
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return JSON.stringify(a.confChange) === JSON.stringify(b.confChange);
}
