/**
 * The applied state of a node's ranges: key-value data per range plus, in
 * the same atomic commit, the applied index it covers (and the Raft term and
 * configuration at that index), so a restart replays the log from exactly
 * there. Implementations: LMDB (`engine/lmdb-state-engine.ts`) and an
 * in-memory one (tests and the simulator); both run the same conformance suite.
 */
import type { RangeId } from '../core/ids.ts';
import type { SnapshotMeta } from '../raft/types.ts';

/** One atomic change to a range's state. */
export interface StateBatch {
  readonly range: RangeId;
  readonly puts: ReadonlyArray<readonly [key: Uint8Array, value: Uint8Array]>;
  readonly deletes: readonly Uint8Array[];
  /** The applied position after this batch (index, term and configuration at that index). */
  readonly applied: SnapshotMeta;
}

/** A chunk of an exported range, in key order. */
export interface SnapshotChunk {
  readonly range: RangeId;
  /** 0-based position of this chunk in the stream. */
  readonly seq: number;
  readonly pairs: ReadonlyArray<readonly [key: Uint8Array, value: Uint8Array]>;
  /** Set on the last chunk: the applied position the snapshot captures, and a checksum over every pair. */
  readonly last?: {
    readonly applied: SnapshotMeta;
    readonly crc32c: number;
    readonly pairCount: number;
  };
}

export interface StateEngine {
  /** Applies the batch atomically and durably (data and applied position together). */
  commit(batch: StateBatch): void;
  get(range: RangeId, key: Uint8Array): Uint8Array | undefined;
  /** Pairs with start <= key < end (end undefined = to the end of the range), in key order, at most `limit`. */
  scan(
    range: RangeId,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Array<[Uint8Array, Uint8Array]>;
  /**
   * Pairs with start <= key < end (end undefined = to the end of the range),
   * in descending key order, at most `limit`: the same set as {@link scan},
   * walked from the top (backward table scans).
   */
  scanReverse(
    range: RangeId,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Array<[Uint8Array, Uint8Array]>;
  /** The applied position of a range, or null if nothing was applied. */
  applied(range: RangeId): SnapshotMeta | null;
  /** Streams the range's data in chunks of at most `chunkBytesMax` payload bytes, from a consistent view. */
  exportSnapshot(range: RangeId, chunkBytesMax: number): Iterable<SnapshotChunk>;
  /**
   * Replaces the range's data with a streamed snapshot. Verifies the
   * checksum and the chunk order before anything becomes visible; on a
   * mismatch throws a CORRUPTION error and leaves the old data intact.
   */
  importSnapshot(range: RangeId, chunks: Iterable<SnapshotChunk>): void;
  /** Removes every key and the applied position of a range. */
  dropRange(range: RangeId): void;
  close(): void;
}
