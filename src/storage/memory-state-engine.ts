/**
 * The reference {@link StateEngine}: every range's data in memory, sorted
 * bytewise on demand. Used by tests and by the simulator, so it is
 * deterministic (no clocks, no randomness, no hash-order dependence) and
 * cheap for small ranges.
 * The snapshot stream format it shares with every engine lives in
 * snapshot-stream.ts.
 */
import { keyString, lowerBound } from '../core/key-strings.ts';
import { assert } from '../core/assert.ts';
import type { RangeId } from '../core/ids.ts';
import type { SnapshotMeta } from '../raft/types.ts';
import type { Pair } from './snapshot-stream.ts';
import {
  assertAppliedAdvances,
  assertScanLimit,
  chunkSnapshot,
  copySnapshotMeta,
  SnapshotStreamVerifier,
} from './snapshot-stream.ts';
import type { SnapshotChunk, StateBatch, StateEngine } from './state-engine.ts';

/** An immutable stored pair; a put replaces the whole cell, never mutates one. */
interface Cell {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** One range: cells by key string, plus a key list sorted only when a scan needs it. */
class RangeData {
  private readonly cells = new Map<string, Cell>();
  /** Every key of `cells` in order, or null after a key was added or removed. */
  private sortedKeys: readonly string[] | null = [];
  applied: SnapshotMeta | null = null;

  get(key: Uint8Array): Cell | undefined {
    return this.cells.get(keyString(key));
  }

  put(key: Uint8Array, value: Uint8Array): void {
    const k = keyString(key);
    if (!this.cells.has(k)) this.sortedKeys = null;
    this.cells.set(k, { key: new Uint8Array(key), value: new Uint8Array(value) });
  }

  delete(key: Uint8Array): void {
    if (this.cells.delete(keyString(key))) this.sortedKeys = null;
  }

  /** Cells with start <= key < end, in key order, at most `limit`. */
  range(start: Uint8Array, end: Uint8Array | undefined, limit: number): Cell[] {
    const keys = this.sorted();
    const endKey = end === undefined ? undefined : keyString(end);
    const out: Cell[] = [];
    for (let i = lowerBound(keys, keyString(start)); i < keys.length && out.length < limit; i++) {
      const k = keys[i]!;
      if (endKey !== undefined && k >= endKey) break;
      out.push(this.cells.get(k)!);
    }
    return out;
  }

  /** Cells with start <= key < end, in descending key order, at most `limit`. */
  rangeReverse(start: Uint8Array, end: Uint8Array | undefined, limit: number): Cell[] {
    const keys = this.sorted();
    const startKey = keyString(start);
    const out: Cell[] = [];
    const top = end === undefined ? keys.length : lowerBound(keys, keyString(end));
    for (let i = top - 1; i >= 0 && out.length < limit; i--) {
      const k = keys[i]!;
      if (k < startKey) break;
      out.push(this.cells.get(k)!);
    }
    return out;
  }

  /** All cells in key order, as of now (later puts replace cells, never mutate these). */
  view(): Cell[] {
    return this.sorted().map((k) => this.cells.get(k)!);
  }

  private sorted(): readonly string[] {
    // Code units are 0..255, so the default (UTF-16 code unit) order is byte order.
    this.sortedKeys ??= [...this.cells.keys()].sort();
    return this.sortedKeys;
  }
}

/** Fresh copies of the cells' pairs, one at a time. */
function* copiedPairs(cells: readonly Cell[]): Generator<Pair> {
  for (const c of cells) yield [new Uint8Array(c.key), new Uint8Array(c.value)];
}

/**
 * The in-memory {@link StateEngine}. Keys compare bytewise. Keys and values
 * are copied on the way in and on the way out, so callers never share
 * buffers with the engine. Nothing is durable: `close` forgets everything.
 *
 * Batch semantics (as in every engine): a batch's deletes apply before its
 * puts, so a key both deleted and put ends up with the put's value; of two
 * puts of one key the later wins.
 *
 * Snapshot views: {@link exportSnapshot} captures the range when iteration
 * begins (the first `next()`); commits made while the stream is consumed do
 * not change it. Import verifies the whole stream into a new range state and
 * swaps it in only when the stream checks out.
 */
export class MemoryStateEngine implements StateEngine {
  private readonly ranges = new Map<RangeId, RangeData>();
  private closed = false;

  /** {@inheritDoc StateEngine.commit} */
  commit(batch: StateBatch): void {
    this.assertOpen();
    const data = this.rangeData(batch.range);
    assertAppliedAdvances(data.applied, batch.applied);
    for (const key of batch.deletes) data.delete(key);
    for (const [key, value] of batch.puts) data.put(key, value);
    data.applied = copySnapshotMeta(batch.applied);
  }

  /** {@inheritDoc StateEngine.get} */
  get(range: RangeId, key: Uint8Array): Uint8Array | undefined {
    this.assertOpen();
    const cell = this.ranges.get(range)?.get(key);
    return cell === undefined ? undefined : new Uint8Array(cell.value);
  }

  /** {@inheritDoc StateEngine.scan} */
  scan(
    range: RangeId,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Array<[Uint8Array, Uint8Array]> {
    return this.scanIn(range, limit, (data) => data.range(start, end, limit));
  }

  /** {@inheritDoc StateEngine.scanReverse} */
  scanReverse(
    range: RangeId,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Array<[Uint8Array, Uint8Array]> {
    return this.scanIn(range, limit, (data) => data.rangeReverse(start, end, limit));
  }

  /** The cells `pick` selects from a range, copied out. */
  private scanIn(
    range: RangeId,
    limit: number,
    pick: (data: RangeData) => Cell[],
  ): Array<[Uint8Array, Uint8Array]> {
    this.assertOpen();
    assertScanLimit(limit);
    const data = this.ranges.get(range);
    if (data === undefined || limit === 0) return [];
    return pick(data).map((c): [Uint8Array, Uint8Array] => [
      new Uint8Array(c.key),
      new Uint8Array(c.value),
    ]);
  }

  /** {@inheritDoc StateEngine.applied} */
  applied(range: RangeId): SnapshotMeta | null {
    this.assertOpen();
    const applied = this.ranges.get(range)?.applied ?? null;
    return applied === null ? null : copySnapshotMeta(applied);
  }

  /**
   * {@inheritDoc StateEngine.exportSnapshot}
   * The range must have an applied position (a snapshot captures applied state).
   */
  *exportSnapshot(range: RangeId, chunkBytesMax: number): Iterable<SnapshotChunk> {
    this.assertOpen();
    const data = this.ranges.get(range);
    assert(
      data !== undefined && data.applied !== null,
      () => `range ${range} has no applied state to export`,
    );
    const applied = copySnapshotMeta(data.applied);
    yield* chunkSnapshot(range, copiedPairs(data.view()), chunkBytesMax, applied);
  }

  /** {@inheritDoc StateEngine.importSnapshot} */
  importSnapshot(range: RangeId, chunks: Iterable<SnapshotChunk>): void {
    this.assertOpen();
    const verifier = new SnapshotStreamVerifier();
    const staged = new RangeData();
    for (const chunk of chunks) {
      verifier.accept(chunk);
      for (const [key, value] of chunk.pairs) staged.put(key, value);
    }
    staged.applied = verifier.finish();
    this.ranges.set(range, staged);
  }

  /** {@inheritDoc StateEngine.dropRange} */
  dropRange(range: RangeId): void {
    this.assertOpen();
    this.ranges.delete(range);
  }

  /** Forgets every range. Idempotent; any other call after it is a programmer error. */
  close(): void {
    this.closed = true;
    this.ranges.clear();
  }

  private rangeData(range: RangeId): RangeData {
    let data = this.ranges.get(range);
    if (data === undefined) {
      data = new RangeData();
      this.ranges.set(range, data);
    }
    return data;
  }

  private assertOpen(): void {
    assert(!this.closed, 'state engine is closed');
  }
}
