/**
 * What a node keeps of its Raft groups' logs: entries, hard state and the
 * snapshot marker (where each group's log starts). One store per node is
 * shared by every group it hosts, so one fsync covers all of them (group
 * commit). Implementations: the segmented write-ahead log engine
 * (`wal/log-engine.ts`) and an in-memory one for tests; both run the same
 * conformance suite.
 */
import type { RangeId } from '../core/ids.ts';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.ts';

/** Changes to one group's log, persisted together. */
export interface GroupWrite {
  readonly group: RangeId;
  /**
   * A snapshot the group installed: the log now starts after `snapshot.index`
   * (every stored entry at or below it is dropped, and entries above it that
   * do not follow it are dropped too).
   */
  readonly snapshot?: SnapshotMeta;
  /** New entries; stored entries at or after the first one's index are replaced. */
  readonly entries?: readonly Entry[];
  readonly hardState?: HardState;
}

/** Everything one group recovers at startup. */
export interface GroupState {
  readonly hardState: HardState;
  /** The latest snapshot marker (a snapshot installed from the leader), or null. */
  readonly snapshot: SnapshotMeta | null;
  /**
   * The live entries, contiguous, in index order: after the snapshot marker
   * and after the compaction point, whichever is later. Compaction may move
   * past the marker (the snapshot itself lives in the state engine).
   */
  readonly entries: readonly Entry[];
}

export interface LogStorage {
  /**
   * Stages writes; they become durable together at the next {@link sync}.
   * Reads see staged writes at once.
   */
  write(writes: readonly GroupWrite[]): void;
  /** Makes every staged write durable: one write and one fsync for all groups. */
  sync(): void;
  /** Groups with any stored state. */
  groups(): RangeId[];
  /** A group's recovered state (empty hard state and no entries if unknown). */
  load(group: RangeId): GroupState;
  /**
   * The group no longer needs entries at or below `index` (they are covered
   * by a durable snapshot). Space is reclaimed once every group has moved past it.
   */
  compact(group: RangeId, index: number): void;
  /** Releases files; staged writes that were not synced are lost. */
  close(): void;
}
