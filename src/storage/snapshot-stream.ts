/**
 * What every state engine shares: the snapshot stream format (chunking,
 * checksum, verification: {@link chunkSnapshot}, {@link SnapshotStreamVerifier},
 * {@link crc32cPair}), so a stream exported by one engine imports into any
 * other, and small helpers for keys, limits and applied positions.
 */
import { assert } from '../core/assert.ts';
import { crc32cUpdate } from '../core/crc32c.ts';
import { TesseraError } from '../core/errors.ts';
import type { RangeId } from '../core/ids.ts';
import type { ConfState, SnapshotMeta } from '../raft/types.ts';
import type { SnapshotChunk } from './state-engine.ts';

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
