/**
 * The log engine's in-memory index of one group: its hard state, snapshot
 * marker and compaction point (small, kept as values), and for each live
 * entry only its index, term and where its record lies. Entry payloads stay
 * on disk (Raft already holds the entries it needs in memory, so caching
 * them here would keep them twice); an entry staged by `write()` and not yet
 * synced keeps its value in `staged` until `sync()` gives it a location.
 *
 * The same methods serve `write()` and recovery replay, so the two cannot
 * disagree. Index maths: `firstIndex() = max(snapshot index, compaction
 * index) + 1`; live entries are contiguous, in index order, and (outside
 * replay of a log whose oldest segments were deleted) start at firstIndex().
 */
import type { LogIndex, Term } from '../../core/ids.ts';
import { logIndex } from '../../core/ids.ts';
import type { Entry, HardState, SnapshotMeta } from '../../raft/types.ts';
import type { RecordLoc } from './segment.ts';

/** A live entry: its identity and where its record lies. */
export interface EntryLoc {
  readonly index: LogIndex;
  readonly term: Term;
  readonly loc: RecordLoc;
  /** The entry itself while it is staged (not yet appended); null once synced. */
  staged: Entry | null;
}

/** One group's part of the in-memory index. */
export class GroupIndex {
  hardState: HardState | null = null;
  hardStateLoc: RecordLoc | null = null;
  /** The latest snapshot marker. */
  snapshot: SnapshotMeta | null = null;
  snapshotLoc: RecordLoc | null = null;
  /** Entries at or below this index were compacted away (0: none). */
  compactIndex: LogIndex = logIndex(0);
  compactLoc: RecordLoc | null = null;
  /** Live entries, contiguous and in index order. */
  entries: EntryLoc[] = [];

  firstIndex(): LogIndex {
    return logIndex(Math.max(this.snapshot?.index ?? 0, this.compactIndex) + 1);
  }

  lastIndex(): LogIndex {
    const last = this.entries[this.entries.length - 1];
    return last === undefined ? logIndex(this.firstIndex() - 1) : last.index;
  }

  /** The term at `index` if known: a live entry's, or the snapshot marker's at its index. */
  termAt(index: number): Term | undefined {
    const first = this.entries[0];
    if (first !== undefined && index >= first.index && index <= this.lastIndex()) {
      return this.entries[index - first.index]!.term;
    }
    return this.snapshot?.index === index ? this.snapshot.term : undefined;
  }

  /**
   * Adds an entry, dropping live entries at or after its index. Returns an
   * error message (and changes nothing) if the entry lies below firstIndex()
   * or would leave a gap after a remaining entry. An entry after a gap with
   * nothing left before it is accepted: replay meets that when the segments
   * holding the dead entries before it were deleted.
   */
  putEntry(entry: EntryLoc): string | undefined {
    if (entry.index < this.firstIndex()) {
      return `entry ${entry.index} is below the first index ${this.firstIndex()}`;
    }
    const first = this.entries[0];
    const keep =
      first === undefined
        ? 0
        : Math.max(0, Math.min(this.entries.length, entry.index - first.index));
    const before = this.entries[keep - 1];
    if (before !== undefined && before.index !== entry.index - 1) {
      return `entry ${entry.index} leaves a gap after entry ${before.index}`;
    }
    this.entries.length = keep;
    this.entries.push(entry);
    return undefined;
  }

  setHardState(hardState: HardState, loc: RecordLoc): void {
    this.hardState = hardState;
    this.hardStateLoc = loc;
  }

  /**
   * Sets the snapshot marker: drops entries at or below its index, and every
   * entry unless `keepFollowing`.
   */
  setSnapshot(snapshot: SnapshotMeta, keepFollowing: boolean, loc: RecordLoc): void {
    this.snapshot = snapshot;
    this.snapshotLoc = loc;
    this.entries = keepFollowing ? this.entries.filter((e) => e.index > snapshot.index) : [];
  }

  /** Moves the compaction point to `index`, dropping entries at or below it. */
  compact(index: LogIndex, loc: RecordLoc): void {
    this.compactIndex = logIndex(Math.max(this.compactIndex, index));
    this.compactLoc = loc;
    this.dropThrough(index);
  }

  /**
   * The oldest segment this group's state depends on: that of its first live
   * entry (records of later entries were written after it), or Infinity.
   */
  oldestEntrySeq(): number {
    return this.entries[0]?.loc.seq ?? Infinity;
  }

  private dropThrough(index: number): void {
    const first = this.entries[0];
    if (first === undefined || first.index > index) return;
    this.entries.splice(0, Math.min(this.entries.length, index - first.index + 1));
  }
}
