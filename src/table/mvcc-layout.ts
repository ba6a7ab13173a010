/**
 * The physical key layout of table rows: how a row's versioned cells, delete
 * markers and (later) transaction records map to keys of a {@link KvView}.
 *
 * Three record families, Percolator-style, under distinct one-byte prefixes:
 *
 * - `L esc(rowKey)` -> a transaction lock (prefix 0x4C 'L'). Reserved: no
 *   code writes it yet; prewrite will.
 * - `W esc(rowKey) ~commitTs` -> a commit record (prefix 0x57 'W'). Reserved:
 *   commit will write it.
 * - `D esc(rowKey) ...` -> data records (prefix 0x44 'D'), two kinds:
 *   - `D esc(rowKey) 0x01 ~version` -> a row delete marker: hides every cell
 *     of the row whose version is <= version.
 *   - `D esc(rowKey) 0x02 esc(column) ~version` -> a cell, a column delete
 *     marker (hides the column's versions <= version) or a version tombstone
 *     (cell-codec.ts encodes the values).
 *
 * `esc(bytes)` is an order-preserving escaping: every 0x00 becomes
 * 0x00 0xFF and the whole is terminated by 0x00 0x01. Escaped strings are
 * prefix-free and compare like the raw bytes, so all records of one row
 * share the prefix `D esc(rowKey)`, never interleave with another row's,
 * and rows follow each other in rowKey order; the same holds for columns
 * inside a row. A column name is escaped as its UTF-8 bytes.
 *
 * `~version` is the version (a non-negative safe integer, milliseconds)
 * stored inverted as 8 bytes big-endian: `2^64 - 1 - version`. A forward scan
 * therefore meets the newest version first, and a row's delete markers
 * (sub-prefix 0x01) before its columns (sub-prefix 0x02).
 *
 * Example: row key `61 00` ("a\0"), column "x", version 5:
 *
 * ```
 * 44 | 61 00 FF 00 01 | 02 | 78 00 01 | FF FF FF FF FF FF FF FA
 * D    esc(rowKey)     col   esc("x")   ~5
 * ```
 *
 * and the row delete marker at version 5 is `44 61 00 FF 00 01 01 FF FF FF FF FF FF FF FA`.
 */
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import type { Version } from './types.ts';

/** Prefix of the lock family (reserved for transactions). */
export const LOCK_PREFIX = 0x4c;
/** Prefix of the write (commit record) family (reserved for transactions). */
export const WRITE_PREFIX = 0x57;
/** Prefix of the data family. */
export const DATA_PREFIX = 0x44;

/** Sub-prefix of row delete markers inside a row's data records. */
const ROW_MARKER_TAG = 0x01;
/** Sub-prefix of column records inside a row's data records. */
const COLUMN_TAG = 0x02;

const ESCAPE = 0x00;
const ESCAPED_ZERO = 0xff;
const TERMINATOR = 0x01;
/** Bytes of an inverted version. */
export const VERSION_BYTES = 8;
const U64_MAX = 2n ** 64n - 1n;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Appends `esc(bytes)` to `out`. */
function pushEscaped(out: number[], bytes: Uint8Array): void {
  for (const b of bytes) {
    out.push(b);
    if (b === ESCAPE) out.push(ESCAPED_ZERO);
  }
  out.push(ESCAPE, TERMINATOR);
}

function pushVersion(out: number[], version: Version): void {
  assert(
    Number.isSafeInteger(version) && version >= 0,
    () => `a version must be a non-negative safe integer, got ${version}`,
  );
  const inverted = U64_MAX - BigInt(version);
  for (let shift = 56n; shift >= 0n; shift -= 8n) out.push(Number((inverted >> shift) & 0xffn));
}

/** The order-preserving escaping of `bytes` (see the file header). */
export function escapeBytes(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  pushEscaped(out, bytes);
  return Uint8Array.from(out);
}

/** The lock record key of a row (reserved for transactions). */
export function lockKey(rowKey: Uint8Array): Uint8Array {
  const out = [LOCK_PREFIX];
  pushEscaped(out, rowKey);
  return Uint8Array.from(out);
}

/** The commit record key of a row at `commitTs` (reserved for transactions). */
export function writeKey(rowKey: Uint8Array, commitTs: Version): Uint8Array {
  const out = [WRITE_PREFIX];
  pushEscaped(out, rowKey);
  pushVersion(out, commitTs);
  return Uint8Array.from(out);
}

/** `D esc(rowKey)`: the prefix every data record of the row starts with. */
export function rowPrefix(rowKey: Uint8Array): Uint8Array {
  const out = [DATA_PREFIX];
  pushEscaped(out, rowKey);
  return Uint8Array.from(out);
}

/**
 * The smallest key above every data record of the row: the row prefix with
 * its final terminator byte 0x01 raised to 0x02. Since escaped strings are
 * prefix-free, exactly the row's records lie in `[rowPrefix, rowSpanEnd)`.
 */
export function rowSpanEnd(rowKey: Uint8Array): Uint8Array {
  const out = rowPrefix(rowKey);
  out[out.length - 1] = TERMINATOR + 1;
  return out;
}

/** The first key of the data family. */
export const DATA_START = Uint8Array.of(DATA_PREFIX);
/** The smallest key above the data family. */
export const DATA_END = Uint8Array.of(DATA_PREFIX + 1);

/** The key of the row delete marker at `version`. */
export function rowMarkerKey(rowKey: Uint8Array, version: Version): Uint8Array {
  const out = [DATA_PREFIX];
  pushEscaped(out, rowKey);
  out.push(ROW_MARKER_TAG);
  pushVersion(out, version);
  return Uint8Array.from(out);
}

/** The key of a column record (cell, column delete marker or tombstone) at `version`. */
export function columnKey(rowKey: Uint8Array, column: string, version: Version): Uint8Array {
  const out = [DATA_PREFIX];
  pushEscaped(out, rowKey);
  out.push(COLUMN_TAG);
  pushEscaped(out, utf8Encoder.encode(column));
  pushVersion(out, version);
  return Uint8Array.from(out);
}

/** A decoded data key. */
export type DataKey =
  | { readonly kind: 'row-marker'; readonly rowKey: Uint8Array; readonly version: Version }
  | {
      readonly kind: 'column';
      readonly rowKey: Uint8Array;
      readonly column: string;
      readonly version: Version;
    };

function corrupt(key: Uint8Array, what: string): TesseraError {
  const hex = Array.from(key.subarray(0, 64), (b) => b.toString(16).padStart(2, '0')).join('');
  return new TesseraError('CORRUPTION', `malformed table data key ${hex}: ${what}`);
}

/** Reads `esc(...)` at `at`; returns the raw bytes and the offset after the terminator. */
function readEscaped(key: Uint8Array, at: number): [Uint8Array, number] {
  const out: number[] = [];
  let i = at;
  for (;;) {
    if (i >= key.length) throw corrupt(key, 'unterminated escaped string');
    const b = key[i]!;
    if (b !== ESCAPE) {
      out.push(b);
      i += 1;
      continue;
    }
    const next = key[i + 1];
    if (next === TERMINATOR) return [Uint8Array.from(out), i + 2];
    if (next !== ESCAPED_ZERO) throw corrupt(key, 'bad escape sequence');
    out.push(ESCAPE);
    i += 2;
  }
}

function readVersion(key: Uint8Array, at: number): Version {
  if (key.length !== at + VERSION_BYTES) throw corrupt(key, 'bad version length');
  let inverted = 0n;
  for (let i = at; i < key.length; i++) inverted = (inverted << 8n) | BigInt(key[i]!);
  const version = U64_MAX - inverted;
  if (version > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(key, 'version out of range');
  return Number(version);
}

/** Decodes the row key of any data key (the bytes between the prefix and the terminator). */
export function dataKeyRow(key: Uint8Array): Uint8Array {
  if (key[0] !== DATA_PREFIX) throw corrupt(key, 'not a data key');
  return readEscaped(key, 1)[0];
}

/** Decodes a data key; anything malformed throws CORRUPTION. */
export function decodeDataKey(key: Uint8Array): DataKey {
  if (key[0] !== DATA_PREFIX) throw corrupt(key, 'not a data key');
  const [rowKey, afterRow] = readEscaped(key, 1);
  const tag = key[afterRow];
  if (tag === ROW_MARKER_TAG) {
    return { kind: 'row-marker', rowKey, version: readVersion(key, afterRow + 1) };
  }
  if (tag !== COLUMN_TAG) throw corrupt(key, `unknown data tag ${String(tag)}`);
  const [columnBytes, afterColumn] = readEscaped(key, afterRow + 1);
  let column: string;
  try {
    column = utf8Decoder.decode(columnBytes);
  } catch {
    throw corrupt(key, 'column name is not UTF-8');
  }
  return { kind: 'column', rowKey, column, version: readVersion(key, afterColumn) };
}
