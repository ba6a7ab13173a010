/**
 * The in-memory Raft log of one node: a snapshot (the compacted prefix) and
 * the entries after it.
 *
 * Index maths: `offset` is the index of the last entry the snapshot covers
 * (0 without one), so `entries[i].index === offset + 1 + i`. The durable copy
 * lives in the runtime's storage; `stableIndex` marks how far it has been
 * persisted: entries after it are "unstable" and go out in the next Ready.
 *
 * Invariants: offset <= applied <= committed <= lastIndex; stableIndex <= lastIndex.
 */
import { assert } from '../core/assert.ts';
import type { LogIndex, Term } from '../core/ids.ts';
import { logIndex, term as toTerm } from '../core/ids.ts';
import type { Entry, Snapshot } from './types.ts';

export class RaftLog {
  /** The snapshot covering indexes <= offset, if any. */
  snapshot: Snapshot | null = null;
  /** A snapshot received from the leader that is not yet persisted and applied. */
  pendingSnapshot: Snapshot | null = null;
  private offset: LogIndex = logIndex(0);
  private offsetTerm: Term = toTerm(0);
  private entries: Entry[] = [];
  /** Highest index known committed (Raft §5.3). */
  committed: LogIndex = logIndex(0);
  /** Highest index handed to the state machine and acknowledged by advance(). */
  applied: LogIndex = logIndex(0);
  /** Highest index whose entry is durable in the runtime's storage. */
  stableIndex: LogIndex = logIndex(0);
  /** Canary `apply-before-commit`: hand entries to the state machine before they commit. */
  applyUncommitted = false;

  /** Restores the log from durable state at startup. */
  static restore(
    snapshot: Snapshot | null,
    entries: readonly Entry[],
    committed: LogIndex,
  ): RaftLog {
    const log = new RaftLog();
    if (snapshot !== null) {
      log.snapshot = snapshot;
      log.offset = snapshot.meta.index;
      log.offsetTerm = snapshot.meta.term;
      log.applied = snapshot.meta.index;
    }
    for (const e of entries) {
      if (e.index <= log.offset) continue;
      assert(e.index === log.lastIndex() + 1, () => `restore: gap at ${e.index}`);
      log.entries.push(e);
    }
    log.stableIndex = log.lastIndex();
    log.committed = logIndex(Math.max(log.offset, Math.min(committed, log.lastIndex())));
    return log;
  }

  firstIndex(): LogIndex {
    return logIndex(this.offset + 1);
  }

  lastIndex(): LogIndex {
    return logIndex(this.offset + this.entries.length);
  }

  lastTerm(): Term {
    return this.term(this.lastIndex())!;
  }

  /** Term of the entry at `index`, or undefined if it is compacted away or beyond the end. */
  term(index: LogIndex): Term | undefined {
    if (index === this.offset) return this.offsetTerm;
    if (index < this.offset || index > this.lastIndex()) return undefined;
    return this.entries[index - this.offset - 1]!.term;
  }

  /** The entry at `index`, if present in memory. */
  entry(index: LogIndex): Entry | undefined {
    if (index <= this.offset) return undefined;
    return this.entries[index - this.offset - 1];
  }

  matchTerm(index: LogIndex, t: Term): boolean {
    return this.term(index) === t;
  }

  /**
   * Raft §5.4.1: a candidate's log is at least as up to date as ours if its
   * last term is higher, or equal with a last index at least as large.
   */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Leader-side append of new entries at the end. Returns the new last index.
   */
  appendNew(entries: readonly Entry[]): LogIndex {
    for (const e of entries) {
      assert(e.index === this.lastIndex() + 1, 'appendNew: index must follow lastIndex');
      this.entries.push(e);
    }
    return this.lastIndex();
  }

  /**
   * Follower-side append (Raft §5.3): if our entry at `prevIndex` has
   * `prevTerm`, drop any conflicting suffix, append the new entries and
   * advance the commit index. Returns the last index now known to match the
   * leader, or undefined if `prevIndex`/`prevTerm` does not match.
   */
  maybeAppend(
    prevIndex: LogIndex,
    prevTerm: Term,
    leaderCommit: LogIndex,
    entries: readonly Entry[],
  ): LogIndex | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = logIndex(prevIndex + entries.length);
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(
        conflict > this.committed,
        () => `entry ${conflict} conflicts with committed entry (committed=${this.committed})`,
      );
      this.truncateAndAppend(entries.slice(conflict - prevIndex - 1));
    }
    this.commitTo(logIndex(Math.min(leaderCommit, lastNew)));
    return lastNew;
  }

  /**
   * The index of the first entry in `entries` that is missing from or differs
   * from our log, or 0 if all are present and equal.
   */
  private findConflict(entries: readonly Entry[]): LogIndex | 0 {
    for (const e of entries) {
      if (e.index <= this.offset) continue;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  private truncateAndAppend(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first > this.offset, 'truncateAndAppend below the snapshot');
    assert(first <= this.lastIndex() + 1, 'truncateAndAppend leaves a gap');
    this.entries.length = first - this.offset - 1;
    if (this.stableIndex >= first) this.stableIndex = logIndex(first - 1);
    for (const e of entries) this.entries.push(e);
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `t`
   * (every entry after it has a larger term, so it cannot match a log whose
   * entry at `index` has term `t`).
   */
  findConflictByTerm(index: LogIndex, t: Term): LogIndex {
    let i = Math.min(index, this.lastIndex());
    while (i > this.offset) {
      const it = this.term(logIndex(i))!;
      if (it <= t) break;
      i--;
    }
    return logIndex(i);
  }

  commitTo(index: LogIndex): void {
    if (index <= this.committed) return;
    assert(
      index <= this.lastIndex(),
      () => `commitTo(${index}) beyond lastIndex ${this.lastIndex()}`,
    );
    this.committed = index;
  }

  /** Entries from `from` on, at least one and at most `bytesMax` payload bytes; undefined if compacted. */
  entriesFrom(from: LogIndex, bytesMax: number): Entry[] | undefined {
    if (from <= this.offset) return undefined;
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = from - this.offset - 1; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      bytes += e.data.length;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  /** Entries not yet durable, to persist in the next Ready. */
  unstableEntries(): Entry[] {
    return this.entries.slice(this.stableIndex - this.offset);
  }

  /** The runtime persisted entries up to `index` with term `t`. Ignored if the log changed since. */
  stableTo(index: LogIndex, t: Term): void {
    if (index > this.stableIndex && this.term(index) === t) this.stableIndex = index;
  }

  /** Entries ready to apply: committed, not yet applied. */
  nextCommittedEntries(): Entry[] {
    const from = Math.max(this.applied, this.offset) + 1;
    const to = this.applyUncommitted ? this.lastIndex() : this.committed;
    if (from > to) return [];
    return this.entries.slice(from - this.offset - 1, to - this.offset);
  }

  hasNextCommittedEntries(): boolean {
    const to = this.applyUncommitted ? this.lastIndex() : this.committed;
    return to > Math.max(this.applied, this.offset);
  }

  appliedTo(index: LogIndex): void {
    if (index <= this.applied) return;
    assert(
      this.applyUncommitted || index <= this.committed,
      () => `appliedTo(${index}) beyond committed ${this.committed}`,
    );
    this.applied = index;
  }

  /** Replaces the whole log with a snapshot received from the leader (Raft §7). */
  restoreSnapshot(snapshot: Snapshot): void {
    assert(snapshot.meta.index > this.committed, 'restoreSnapshot: not ahead of committed');
    this.snapshot = snapshot;
    this.pendingSnapshot = snapshot;
    this.offset = snapshot.meta.index;
    this.offsetTerm = snapshot.meta.term;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.stableIndex = snapshot.meta.index;
  }

  /** The runtime persisted and applied the pending snapshot. */
  snapshotApplied(snapshot: Snapshot): void {
    if (this.pendingSnapshot === snapshot) this.pendingSnapshot = null;
    if (snapshot.meta.index > this.applied) this.applied = snapshot.meta.index;
  }

  /**
   * Discards entries up to the snapshot's index, which the state machine has
   * applied and the runtime has made durable (log compaction, Raft §7).
   */
  compact(snapshot: Snapshot): void {
    const index = snapshot.meta.index;
    assert(index <= this.applied, 'compact beyond applied');
    assert(this.pendingSnapshot === null, 'compact while a snapshot is pending');
    if (index <= this.offset) return;
    assert(this.term(index) === snapshot.meta.term, 'compact: snapshot term mismatch');
    this.entries = this.entries.slice(index - this.offset);
    this.offset = index;
    this.offsetTerm = snapshot.meta.term;
    this.snapshot = snapshot;
  }
}
