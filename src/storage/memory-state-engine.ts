/**
 * The reference {@link StateEngine}: every range's data in memory, sorted
 * bytewise on demand. Used by tests and by the simulator, so it is
 * deterministic (no clocks, no randomness, no hash-order dependence) and
 * cheap for small ranges.
 *
 * This module also defines the snapshot stream format that every engine
 * shares (chunking, checksum, verification): {@link chunkSnapshot},
 * {@link SnapshotStreamVerifier}, {@link crc32cPair}. The LMDB engine imports
 * them from here, so a stream exported by one engine imports into the other.
 */
import { assert } from '../core/assert.ts';
import { crc32cUpdate } from '../core/crc32c.ts';
import { TesseraError } from '../core/errors.ts';
import type { RangeId } from '../core/ids.ts';
import type { ConfState, SnapshotMeta } from '../raft/types.ts';
import type { SnapshotChunk, StateBatch, StateEngine } from './state-engine.ts';

/** A key-value pair as chunks carry it. */
export type Pair = readonly [key: Uint8Array, value: Uint8Array];

/** Compares byte strings lexicographically (unsigned bytes; a prefix sorts first). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Asserts that `limit` is a usable scan limit (a non-negative integer or Infinity). */
export function assertScanLimit(limit: number): void {
  assert(
    limit === Infinity || (Number.isInteger(limit) && limit >= 0),
    () => `scan limit must be a non-negative integer or Infinity, got ${limit}`,
  );
}

/**
 * Asserts that an applied position does not move backwards: a state engine
 * applies a Raft log in index order (Raft §5.3), so a commit covering an
 * older index than the stored one is a programmer error.
 */
export function assertAppliedAdvances(prev: SnapshotMeta | null, next: SnapshotMeta): void {
  assert(
    prev === null || next.index >= prev.index,
    () => `applied index moves backwards: ${prev?.index} -> ${next.index}`,
  );
}

// ---------------------------------------------------------------------------
// Snapshot stream format, shared by every engine.
// ---------------------------------------------------------------------------

const LENGTH_BYTES = 4;

function u32be(n: number): Uint8Array {
  const out = new Uint8Array(LENGTH_BYTES);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/**
 * Folds one pair into a snapshot checksum. The bytes hashed per pair are
 * `u32be(key.length) ‖ key ‖ u32be(value.length) ‖ value`; the stream's
 * checksum is CRC-32C over that sequence for every pair in key order,
 * starting from 0 (an empty range hashes to 0).
 */
export function crc32cPair(crc: number, key: Uint8Array, value: Uint8Array): number {
  let c = crc32cUpdate(crc, u32be(key.length));
  c = crc32cUpdate(c, key);
  c = crc32cUpdate(c, u32be(value.length));
  return crc32cUpdate(c, value);
}

/** Payload bytes a pair adds to a chunk (key plus value; framing not counted). */
export const pairBytes = (pair: Pair): number => pair[0].length + pair[1].length;

/**
 * Cuts pairs (already in key order) into snapshot chunks of at most
 * `chunkBytesMax` payload bytes, except that a single pair larger than the
 * bound travels alone in its own chunk. The last chunk (possibly empty, and
 * always present) carries the applied position, the checksum
 * ({@link crc32cPair}) and the pair count. Holds at most one chunk of pairs.
 */
export function* chunkSnapshot(
  range: RangeId,
  pairs: Iterable<Pair>,
  chunkBytesMax: number,
  applied: SnapshotMeta,
): Generator<SnapshotChunk> {
  assert(Number.isInteger(chunkBytesMax) && chunkBytesMax > 0, 'chunkBytesMax must be > 0');
  let seq = 0;
  let crc = 0;
  let pairCount = 0;
  let chunk: Pair[] = [];
  let chunkBytes = 0;
  for (const pair of pairs) {
    const bytes = pairBytes(pair);
    if (chunk.length > 0 && chunkBytes + bytes > chunkBytesMax) {
      yield { range, seq: seq++, pairs: chunk };
      chunk = [];
      chunkBytes = 0;
    }
    chunk.push(pair);
    chunkBytes += bytes;
    crc = crc32cPair(crc, pair[0], pair[1]);
    pairCount++;
  }
  yield { range, seq, pairs: chunk, last: { applied, crc32c: crc, pairCount } };
}

function corruption(message: string): TesseraError {
  return new TesseraError('CORRUPTION', `snapshot stream: ${message}`);
}

const isIdList = (v: unknown): boolean =>
  Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);

/** True if `v` has the shape of a {@link SnapshotMeta} (used on untrusted input). */
export function isSnapshotMeta(v: unknown): v is SnapshotMeta {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as { index?: unknown; term?: unknown; conf?: unknown };
  if (!Number.isSafeInteger(m.index) || !Number.isSafeInteger(m.term)) return false;
  if (typeof m.conf !== 'object' || m.conf === null) return false;
  const c = m.conf as { [K in keyof ConfState]?: unknown };
  return isIdList(c.voters) && isIdList(c.votersOutgoing) && isIdList(c.learners);
}

/** A deep copy of a SnapshotMeta (callers never share mutable state with an engine). */
export function copySnapshotMeta(m: SnapshotMeta): SnapshotMeta {
  return {
    index: m.index,
    term: m.term,
    conf: {
      voters: [...m.conf.voters],
      votersOutgoing: [...m.conf.votersOutgoing],
      learners: [...m.conf.learners],
    },
  };
}

/**
 * Checks a snapshot stream chunk by chunk, as an importer receives it:
 * sequence numbers 0, 1, 2, ... without gaps, one source range, keys strictly
 * increasing across the whole stream, nothing after the last chunk, and on
 * the last chunk the checksum and pair count. Every failure throws a
 * CORRUPTION {@link TesseraError}; an importer makes nothing visible before
 * {@link finish} has returned.
 */
export class SnapshotStreamVerifier {
  private nextSeq = 0;
  private crc = 0;
  private pairCount = 0;
  private prevKey: Uint8Array | null = null;
  private source: RangeId | null = null;
  private applied: SnapshotMeta | null = null;

  /** Verifies one chunk's place in the stream and folds its pairs into the checksum. */
  accept(chunk: SnapshotChunk): void {
    if (this.applied !== null) throw corruption(`chunk ${chunk.seq} after the last chunk`);
    if (chunk.seq !== this.nextSeq) {
      throw corruption(`expected chunk ${this.nextSeq}, got ${chunk.seq}`);
    }
    if (this.source !== null && chunk.range !== this.source) {
      throw corruption(`chunk ${chunk.seq} is from range ${chunk.range}, not ${this.source}`);
    }
    this.source = chunk.range;
    this.nextSeq++;
    for (const [key, value] of chunk.pairs) this.acceptPair(key, value);
    if (chunk.last !== undefined) this.acceptLast(chunk.last);
  }

  /** The applied position of a complete, verified stream; throws CORRUPTION if it is incomplete. */
  finish(): SnapshotMeta {
    if (this.applied === null) {
      throw corruption(`stream ended after ${this.nextSeq} chunk(s) without its last chunk`);
    }
    return this.applied;
  }

  private acceptPair(key: Uint8Array, value: Uint8Array): void {
    if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array)) {
      throw corruption('a pair is not two byte strings');
    }
    if (this.prevKey !== null && compareBytes(this.prevKey, key) >= 0) {
      throw corruption('keys out of order or duplicated');
    }
    this.prevKey = key;
    this.crc = crc32cPair(this.crc, key, value);
    this.pairCount++;
  }

  private acceptLast(last: NonNullable<SnapshotChunk['last']>): void {
    if (last.pairCount !== this.pairCount) {
      throw corruption(`pair count ${this.pairCount}, the stream says ${last.pairCount}`);
    }
    if (last.crc32c !== this.crc) {
      throw corruption(`checksum ${this.crc}, the stream says ${last.crc32c}`);
    }
    if (!isSnapshotMeta(last.applied)) throw corruption('malformed applied position');
    this.applied = copySnapshotMeta(last.applied);
  }
}

// ---------------------------------------------------------------------------
// The in-memory engine.
// ---------------------------------------------------------------------------

/** Largest chunk String.fromCharCode gets at once (stays far below argument-count limits). */
const CHAR_CODES_PER_CALL = 8192;

/**
 * A binary-safe string form of a key: one UTF-16 code unit (0..255) per
 * byte, so comparing the strings compares the keys bytewise.
 */
function keyString(key: Uint8Array): string {
  if (key.length <= CHAR_CODES_PER_CALL) return String.fromCharCode(...key);
  let s = '';
  for (let i = 0; i < key.length; i += CHAR_CODES_PER_CALL) {
    s += String.fromCharCode(...key.subarray(i, i + CHAR_CODES_PER_CALL));
  }
  return s;
}

/** An immutable stored pair; a put replaces the whole cell, never mutates one. */
interface Cell {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** The first index in sorted `keys` whose key is >= `k`. */
function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
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
    this.assertOpen();
    assertScanLimit(limit);
    const data = this.ranges.get(range);
    if (data === undefined || limit === 0) return [];
    return data
      .range(start, end, limit)
      .map((c): [Uint8Array, Uint8Array] => [new Uint8Array(c.key), new Uint8Array(c.value)]);
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
