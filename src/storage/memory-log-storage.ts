/**
 * The reference {@link LogStorage}: everything in plain arrays and maps,
 * nothing on disk, `sync()` a no-op. It states the semantics in the most
 * obvious code, so that the log engine can be checked against it (the
 * conformance suite in test/storage/log-storage-suite.ts runs both, and its
 * property test uses this one as the model).
 *
 * Semantics shared with the log engine, per group:
 * - `firstIndex = max(snapshot marker index, compaction index) + 1`; stored
 *   entries are contiguous from firstIndex (or there are none) and
 *   `lastIndex` is the last one's index (firstIndex - 1 without entries).
 * - A write applies its snapshot marker, then its entries, then its hard
 *   state.
 * - A snapshot marker may not go behind `firstIndex - 1`. It drops entries
 *   at or below its index; the entries above it survive only if the stored
 *   term at its index (an entry's, or the current marker's at that same
 *   index) equals the marker's term.
 * - New entries are contiguous and start within [firstIndex, lastIndex + 1];
 *   stored entries at or after the first one's index are replaced.
 * - `compact(g, i)` is a no-op for i < firstIndex, may not pass lastIndex,
 *   and otherwise drops entries at or below i without touching the marker.
 * Violations are programmer errors (assertions).
 */
import { assert } from '../core/assert.ts';
import type { LogIndex, RangeId } from '../core/ids.ts';
import { logIndex, NO_NODE, term } from '../core/ids.ts';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.ts';
import type { GroupState, GroupWrite, LogStorage } from './log-storage.ts';

const EMPTY_HARD_STATE: HardState = Object.freeze({
  term: term(0),
  vote: NO_NODE,
  commit: logIndex(0),
});

interface MemoryGroup {
  hardState: HardState;
  snapshot: SnapshotMeta | null;
  compactIndex: number;
  entries: Entry[];
}

/** An in-memory LogStorage; see the module comment for its exact semantics. */
export class MemoryLogStorage implements LogStorage {
  private readonly groupsById = new Map<RangeId, MemoryGroup>();

  /** Applies the writes at once (there is nothing to make durable). */
  write(writes: readonly GroupWrite[]): void {
    for (const w of writes) {
      if (w.snapshot !== undefined) this.applySnapshot(w.group, w.snapshot);
      if (w.entries !== undefined && w.entries.length > 0) this.applyEntries(w.group, w.entries);
      if (w.hardState !== undefined) this.group(w.group).hardState = w.hardState;
    }
  }

  /** Nothing to do: memory is as durable as it gets here. */
  sync(): void {}

  groups(): RangeId[] {
    return [...this.groupsById.keys()].sort((a, b) => a - b);
  }

  load(group: RangeId): GroupState {
    const g = this.groupsById.get(group);
    if (g === undefined) return { hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] };
    return { hardState: g.hardState, snapshot: g.snapshot, entries: g.entries.slice() };
  }

  compact(group: RangeId, index: number): void {
    const g = this.groupsById.get(group);
    if (g === undefined ? index < 1 : index < firstIndex(g)) return;
    assert(
      g !== undefined && index <= lastIndex(g),
      () => `compact(${group}, ${index}) beyond the last index`,
    );
    g.entries = g.entries.filter((e) => e.index > index);
    g.compactIndex = index;
  }

  /** Nothing to release. */
  close(): void {}

  private applySnapshot(group: RangeId, snapshot: SnapshotMeta): void {
    const g = this.group(group);
    assert(
      snapshot.index >= firstIndex(g) - 1,
      () => `snapshot ${snapshot.index} behind the log start`,
    );
    const stored =
      g.entries.find((e) => e.index === snapshot.index)?.term ??
      (g.snapshot?.index === snapshot.index ? g.snapshot.term : undefined);
    g.entries = stored === snapshot.term ? g.entries.filter((e) => e.index > snapshot.index) : [];
    g.snapshot = snapshot;
  }

  private applyEntries(group: RangeId, entries: readonly Entry[]): void {
    const g = this.group(group);
    const start = entries[0]!.index;
    assert(
      start >= firstIndex(g) && start <= lastIndex(g) + 1,
      () => `entries from ${start} do not fit the log of group ${group}`,
    );
    entries.forEach((e, k) => assert(e.index === start + k, 'entries not contiguous'));
    g.entries = [...g.entries.filter((e) => e.index < start), ...entries];
  }

  private group(group: RangeId): MemoryGroup {
    let g = this.groupsById.get(group);
    if (g === undefined) {
      g = { hardState: EMPTY_HARD_STATE, snapshot: null, compactIndex: 0, entries: [] };
      this.groupsById.set(group, g);
    }
    return g;
  }
}

function firstIndex(g: MemoryGroup): LogIndex {
  return logIndex(Math.max(g.snapshot?.index ?? 0, g.compactIndex) + 1);
}

function lastIndex(g: MemoryGroup): LogIndex {
  return g.entries[g.entries.length - 1]?.index ?? logIndex(firstIndex(g) - 1);
}
