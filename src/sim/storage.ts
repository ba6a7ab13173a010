/**
 * A node's durable state in the simulator: what survives a crash. Writes
 * land here only when the simulated disk completes them; everything else a
 * node holds is lost when it crashes.
 */
import type { LogIndex } from '../core/ids.ts';
import { logIndex, NO_NODE, term } from '../core/ids.ts';
import { assert } from '../core/assert.ts';
import type { Entry, HardState, Snapshot } from '../raft/types.ts';

export class SimStorage {
  hardState: HardState = { term: term(0), vote: NO_NODE, commit: logIndex(0) };
  snapshot: Snapshot | null = null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[] = [];

  private firstIndex(): number {
    return (this.snapshot?.meta.index ?? 0) + 1;
  }

  /** Persists a snapshot received from the leader: it replaces the whole log. */
  applySnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = [];
  }

  /** Appends entries, replacing any stored entries at or after the first one's index. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const keep = first.index - this.firstIndex();
    assert(
      keep >= 0 && keep <= this.entries.length,
      () => `storage append leaves a gap at ${first.index}`,
    );
    this.entries.length = keep;
    for (const e of entries) this.entries.push(e);
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  /** Keeps `snapshot` (already taken by the state machine) and drops the entries it covers. */
  compact(snapshot: Snapshot): void {
    const drop = snapshot.meta.index - this.firstIndex() + 1;
    if (drop <= 0) return;
    this.entries = this.entries.slice(drop);
    this.snapshot = snapshot;
  }

  lastIndex(): LogIndex {
    return logIndex(this.firstIndex() - 1 + this.entries.length);
  }
}
