/**
 * The durable {@link StateEngine} on LMDB (the `lmdb` package): one
 * environment per node holds every range.
 *
 * Key layout (all keys binary, compared bytewise by LMDB):
 *
 * | key                                      | value                          |
 * | ---------------------------------------- | ------------------------------ |
 * | `0x00 ‖ u64be(range)`                    | applied position, UTF-8 JSON   |
 * | `0x01 ‖ u64be(range) ‖ user key`         | user value                     |
 * | `0xff`                                   | format version, u32be (1)      |
 *
 * So a range's data is one contiguous key interval, and its applied
 * position is a separate key written in the same LMDB transaction as the
 * data it covers: a restart finds both or neither.
 *
 * Durability: every write is one `transactionSync` with LMDB's default
 * synchronous commit (data pages flushed, then the meta page written
 * synchronously) before the call returns; the environment is opened without
 * `noSync` and without lmdb-js's `overlappingSync`, whose commit may return
 * before the flush.
 */
import { open } from 'lmdb';
import type { RootDatabase } from 'lmdb';
import { assert } from '../../core/assert.ts';
import { TesseraError } from '../../core/errors.ts';
import type { RangeId } from '../../core/ids.ts';
import type { SnapshotMeta } from '../../raft/types.ts';
import {
  assertAppliedAdvances,
  assertScanLimit,
  chunkSnapshot,
  compareBytes,
  copySnapshotMeta,
  isSnapshotMeta,
  SnapshotStreamVerifier,
} from '../snapshot-stream.ts';
import type { Pair } from '../snapshot-stream.ts';
import type { SnapshotChunk, StateBatch, StateEngine } from '../state-engine.ts';

/** LMDB's maximum key size for the default 4 KiB page (`mdb_env_get_maxkeysize`). */
export const LMDB_KEY_BYTES_MAX = 1978;
/** Bytes in front of every user key: a 1-byte tag and the 8-byte big-endian range id. */
export const KEY_PREFIX_BYTES = 9;
/** Largest user key a range accepts; a larger one fails with KEY_TOO_LARGE. */
export const STATE_KEY_BYTES_MAX = LMDB_KEY_BYTES_MAX - KEY_PREFIX_BYTES;
/** Largest value a range accepts (1 MiB); a larger one fails with VALUE_TOO_LARGE. */
export const STATE_VALUE_BYTES_MAX = 1 << 20;
/** Version of the key layout above, stored under {@link FORMAT_KEY}. */
export const STATE_FORMAT_VERSION = 1;

const TAG_APPLIED = 0x00;
const TAG_DATA = 0x01;
const FORMAT_KEY = Uint8Array.of(0xff);
/** Keys removed per cursor pass when clearing a range inside a write transaction. */
const CLEAR_KEYS_PER_PASS = 1024;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Options of {@link LmdbStateEngine.open}. */
export interface LmdbStateEngineOptions {
  /** Initial map size in bytes (lmdb-js grows it when full). Default: lmdb-js's default. */
  readonly mapSizeBytes?: number;
}

/** `tag ‖ u64be(range) ‖ suffix`. */
function tagged(tag: number, range: RangeId, suffix?: Uint8Array): Uint8Array {
  assert(Number.isSafeInteger(range) && range >= 0, () => `bad range id ${range}`);
  const out = new Uint8Array(KEY_PREFIX_BYTES + (suffix?.length ?? 0));
  const view = new DataView(out.buffer);
  out[0] = tag;
  view.setUint32(1, Math.floor(range / 2 ** 32), false);
  view.setUint32(5, range >>> 0, false);
  if (suffix !== undefined) out.set(suffix, KEY_PREFIX_BYTES);
  return out;
}

const dataKey = (range: RangeId, key: Uint8Array): Uint8Array => tagged(TAG_DATA, range, key);
const appliedKey = (range: RangeId): Uint8Array => tagged(TAG_APPLIED, range);
/**
 * The first key after every data key of `range`: its 9-byte prefix plus one
 * (as a big-endian number; range ids are below 2^53, so the tag never carries).
 */
function dataEnd(range: RangeId): Uint8Array {
  const end = tagged(TAG_DATA, range);
  for (let i = KEY_PREFIX_BYTES - 1; i >= 0; i--) {
    end[i] = (end[i]! + 1) & 0xff;
    if (end[i] !== 0) break;
  }
  return end;
}

/** A plain Uint8Array view of a Buffer lmdb-js returned (a fresh copy), from `offset`. */
function plain(b: Uint8Array, offset = 0): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset + offset, b.byteLength - offset);
}

function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

function readU32be(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, false);
}

/** Throws KEY_TOO_LARGE / VALUE_TOO_LARGE if a pair exceeds the limits. */
function checkLimits(key: Uint8Array, value?: Uint8Array): void {
  if (key.length > STATE_KEY_BYTES_MAX) {
    throw new TesseraError('KEY_TOO_LARGE', undefined, {
      limit: STATE_KEY_BYTES_MAX,
      actual: key.length,
    });
  }
  if (value !== undefined && value.length > STATE_VALUE_BYTES_MAX) {
    throw new TesseraError('VALUE_TOO_LARGE', undefined, {
      limit: STATE_VALUE_BYTES_MAX,
      actual: value.length,
    });
  }
}

function checkBatchLimits(batch: StateBatch): void {
  for (const key of batch.deletes) checkLimits(key);
  for (const [key, value] of batch.puts) checkLimits(key, value);
}

function encodeApplied(applied: SnapshotMeta): Uint8Array {
  return utf8Encoder.encode(JSON.stringify(copySnapshotMeta(applied)));
}

function decodeApplied(range: RangeId, bytes: Uint8Array): SnapshotMeta {
  let v: unknown;
  try {
    v = JSON.parse(utf8Decoder.decode(bytes));
  } catch {
    v = undefined;
  }
  if (!isSnapshotMeta(v)) {
    throw new TesseraError('CORRUPTION', `state engine: bad applied position of range ${range}`);
  }
  return v;
}

/**
 * The LMDB {@link StateEngine}. Batch semantics as in every engine: a
 * batch's deletes apply before its puts. Limits: user keys up to
 * {@link STATE_KEY_BYTES_MAX} bytes, values up to {@link STATE_VALUE_BYTES_MAX};
 * a batch exceeding either throws KEY_TOO_LARGE / VALUE_TOO_LARGE and
 * commits nothing.
 *
 * Snapshots: {@link exportSnapshot} reads one LMDB read transaction (taken
 * when iteration begins, released when it ends or is abandoned through
 * `return()`), so commits made meanwhile are not seen. {@link importSnapshot}
 * runs in one write transaction: it clears the range, writes each chunk as
 * it arrives (holding at most one chunk in JavaScript memory), and commits
 * only when the whole stream verified; on any failure the transaction is
 * aborted and the old data and applied position stay as they were.
 */
export class LmdbStateEngine implements StateEngine {
  private closed = false;

  private constructor(private readonly db: RootDatabase<Uint8Array, Uint8Array>) {}

  /**
   * Opens (creating if missing) the environment in directory `path`.
   * Throws CORRUPTION if it holds data of another format.
   */
  static open(path: string, options: LmdbStateEngineOptions = {}): LmdbStateEngine {
    const db = open<Uint8Array, Uint8Array>(path, {
      keyEncoding: 'binary',
      encoding: 'binary',
      overlappingSync: false,
      ...(options.mapSizeBytes === undefined ? {} : { mapSize: options.mapSizeBytes }),
    });
    const engine = new LmdbStateEngine(db);
    try {
      engine.checkFormat();
    } catch (e) {
      engine.close();
      throw e;
    }
    return engine;
  }

  /** {@inheritDoc StateEngine.commit} Durable when it returns. */
  commit(batch: StateBatch): void {
    this.assertOpen();
    checkBatchLimits(batch);
    this.db.transactionSync(() => {
      assertAppliedAdvances(this.readApplied(batch.range), batch.applied);
      for (const key of batch.deletes) this.db.removeSync(dataKey(batch.range, key));
      for (const [key, value] of batch.puts) this.db.putSync(dataKey(batch.range, key), value);
      this.db.putSync(appliedKey(batch.range), encodeApplied(batch.applied));
    });
  }

  /** {@inheritDoc StateEngine.get} */
  get(range: RangeId, key: Uint8Array): Uint8Array | undefined {
    this.assertOpen();
    if (key.length > STATE_KEY_BYTES_MAX) return undefined; // never stored
    const value = this.db.get(dataKey(range, key));
    return value === undefined ? undefined : plain(value);
  }

  /** {@inheritDoc StateEngine.scan} */
  scan(
    range: RangeId,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Array<[Uint8Array, Uint8Array]> {
    return this.scanIn(range, start, end, limit, false);
  }

  /** {@inheritDoc StateEngine.scanReverse} */
  scanReverse(
    range: RangeId,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Array<[Uint8Array, Uint8Array]> {
    return this.scanIn(range, start, end, limit, true);
  }

  private scanIn(
    range: RangeId,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
    reverse: boolean,
  ): Array<[Uint8Array, Uint8Array]> {
    this.assertOpen();
    assertScanLimit(limit);
    checkLimits(start);
    if (end !== undefined) checkLimits(end);
    const out: Array<[Uint8Array, Uint8Array]> = [];
    if (limit === 0 || (end !== undefined && compareBytes(start, end) >= 0)) return out;
    const b = this.bounds(range, start, end);
    // A reverse LMDB range starts at its (inclusive) `start` and stops before
    // its `end`: walk down from the upper bound, skipping the bound itself,
    // and stop below the lower bound by hand (it is inclusive here).
    const pairs = reverse ? this.db.getRange({ start: b.end, reverse: true }) : this.db.getRange(b);
    for (const { key, value } of pairs) {
      const k = key as Uint8Array;
      if (reverse && compareBytes(k, b.end) >= 0) continue;
      if (reverse && compareBytes(k, b.start) < 0) break;
      out.push([plain(k, KEY_PREFIX_BYTES), plain(value)]);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** {@inheritDoc StateEngine.applied} */
  applied(range: RangeId): SnapshotMeta | null {
    this.assertOpen();
    return this.readApplied(range);
  }

  /**
   * {@inheritDoc StateEngine.exportSnapshot}
   * The range must have an applied position (a snapshot captures applied state).
   */
  *exportSnapshot(range: RangeId, chunkBytesMax: number): Iterable<SnapshotChunk> {
    this.assertOpen();
    const txn = this.db.useReadTransaction();
    try {
      const raw = this.db.get(appliedKey(range), { transaction: txn });
      assert(raw !== undefined, () => `range ${range} has no applied state to export`);
      const applied = decodeApplied(range, raw);
      const entries = this.db.getRange({ ...this.bounds(range), transaction: txn });
      const pairs = entries.map(({ key, value }): Pair => [
        plain(key, KEY_PREFIX_BYTES),
        plain(value),
      ]);
      yield* chunkSnapshot(range, pairs, chunkBytesMax, applied);
    } finally {
      txn.done();
    }
  }

  /** {@inheritDoc StateEngine.importSnapshot} */
  importSnapshot(range: RangeId, chunks: Iterable<SnapshotChunk>): void {
    this.assertOpen();
    this.db.transactionSync(() => {
      this.clearData(range);
      const verifier = new SnapshotStreamVerifier();
      for (const chunk of chunks) {
        verifier.accept(chunk);
        for (const [key, value] of chunk.pairs) {
          checkLimits(key, value);
          this.db.putSync(dataKey(range, key), value);
        }
      }
      // Throws CORRUPTION on an incomplete stream: the transaction aborts.
      this.db.putSync(appliedKey(range), encodeApplied(verifier.finish()));
    });
  }

  /** {@inheritDoc StateEngine.dropRange} Durable when it returns. */
  dropRange(range: RangeId): void {
    this.assertOpen();
    this.db.transactionSync(() => {
      this.clearData(range);
      this.db.removeSync(appliedKey(range));
    });
  }

  /** Closes the environment. Idempotent; any other call after it is a programmer error. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // lmdb-js closes a root environment synchronously when no reads are in
    // flight (we issue none asynchronously); the promise only reports it.
    void this.db.close();
  }

  /** Range options for the data keys of `range` with start <= key < end. */
  private bounds(
    range: RangeId,
    start: Uint8Array = new Uint8Array(0),
    end?: Uint8Array,
  ): { start: Uint8Array; end: Uint8Array } {
    return {
      start: dataKey(range, start),
      end: end === undefined ? dataEnd(range) : dataKey(range, end),
    };
  }

  private readApplied(range: RangeId): SnapshotMeta | null {
    const raw = this.db.get(appliedKey(range));
    return raw === undefined ? null : decodeApplied(range, raw);
  }

  /** Removes every data key of `range`; must run inside a write transaction. */
  private clearData(range: RangeId): void {
    for (;;) {
      const keys = [...this.db.getKeys({ ...this.bounds(range), limit: CLEAR_KEYS_PER_PASS })];
      for (const key of keys) this.db.removeSync(key);
      if (keys.length < CLEAR_KEYS_PER_PASS) return;
    }
  }

  /** Writes the format version into a new environment, or checks an existing one's. */
  private checkFormat(): void {
    const raw = this.db.get(FORMAT_KEY);
    if (raw === undefined) {
      // Every key this engine writes is at least one byte, so the default start ([0x00]) sees all.
      const empty = [...this.db.getKeys({ limit: 1 })].length === 0;
      if (!empty) throw new TesseraError('CORRUPTION', 'state engine: no format version');
      this.db.transactionSync(() => this.db.putSync(FORMAT_KEY, u32be(STATE_FORMAT_VERSION)));
      return;
    }
    const version = raw.length === 4 ? readU32be(raw) : -1;
    if (version !== STATE_FORMAT_VERSION) {
      throw new TesseraError('CORRUPTION', `state engine: unknown format version ${version}`);
    }
  }

  private assertOpen(): void {
    assert(!this.closed, 'state engine is closed');
  }
}
