/**
 * The order-preserving encoding of primary keys. Storage (LMDB) orders keys
 * by unsigned lexicographic byte comparison ({@link compareBytes}); this
 * encoding makes that order equal to the order of primary-key tuples, so a
 * range scan over rows is a range scan over bytes.
 *
 * Tuple order: column by column, the first difference decides; a tuple that
 * is a proper prefix of another sorts first. Within a column, integers
 * compare as signed 64-bit numbers, strings by their UTF-8 bytes (which is
 * Unicode code point order), binary by unsigned bytes (a prefix first).
 *
 * Each column is a type tag followed by its body:
 *
 * - integer `0x10`: 8 bytes, big-endian two's complement with the sign bit
 *   flipped, so -2^63 is `00..00` and 2^63-1 is `ff..ff`;
 * - string `0x20` (UTF-8 bytes) and binary `0x30`: the bytes with every
 *   `0x00` escaped as `0x00 0xff`, then the terminator `0x00 0x01`.
 *
 * The escaping keeps concatenation order-preserving: the terminator sorts
 * below any data byte and below an escaped zero, so a shorter value sorts
 * before its extensions, and no column's encoding is a prefix of another
 * value's encoding of the same column (the encoding is prefix-free). Hence
 * an encoded primary key may be followed by any suffix (a column name, a
 * version) without changing the order of rows.
 *
 * Bounds of range scans are encoded by {@link encodeBound}; see there.
 */
import { assert, assertNever } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import { compareBytes } from '../storage/snapshot-stream.ts';
import { checkInt64 } from './int64.ts';
import { INF_MAX, INF_MIN, type PkBound, type PkColumnType, type PkValue } from './types.ts';
import { utf8Decode, utf8Encode } from './utf8.ts';

export { compareBytes };

/** The most primary-key columns a table may have (Table Store's limit). */
export const PK_COLUMNS_MAX = 4;

/**
 * The most bytes of one string (UTF-8) or binary primary-key column, before
 * escaping. Checked on encode; exceeding it throws KEY_TOO_LARGE.
 */
export const PK_COLUMN_BYTES_MAX = 512;

/**
 * The most bytes of an encoded primary key, tags and escapes included, so
 * a key plus the storage layout's prefix and suffix stays well under LMDB's
 * key size limit. Checked on encode; exceeding it throws KEY_TOO_LARGE.
 */
export const PK_BYTES_MAX = 1024;

/** Type tag of an integer column. */
export const TAG_INTEGER = 0x10;
/** Type tag of a string column. */
export const TAG_STRING = 0x20;
/** Type tag of a binary column. */
export const TAG_BINARY = 0x30;
/**
 * The byte that ends a bound whose column is INF_MAX: above every type tag,
 * so above every key that shares the bound's earlier columns.
 */
export const BOUND_INF_MAX_BYTE = 0xff;

const INTEGER_BODY_BYTES = 8;
const ESCAPE = 0x00;
const ESCAPED_ZERO = 0xff;
const TERMINATOR = 0x01;
const SIGN_BIT = 1n << 63n;

function tagOf(type: PkColumnType): number {
  switch (type) {
    case 'integer':
      return TAG_INTEGER;
    case 'string':
      return TAG_STRING;
    case 'binary':
      return TAG_BINARY;
    default:
      return assertNever(type, 'primary key column type');
  }
}

function invalid(message: string): never {
  throw new TesseraError('INVALID_ARGUMENT', message);
}

function describeValue(v: unknown): string {
  if (typeof v === 'bigint') return 'an integer (bigint)';
  if (typeof v === 'string') return 'a string';
  if (v instanceof Uint8Array) return 'binary (Uint8Array)';
  if (v === INF_MIN || v === INF_MAX) return 'an infinite bound';
  if (typeof v === 'number') return 'a number (integers are bigint)';
  return typeof v;
}

function assertColumns(columns: readonly PkColumnType[]): void {
  assert(
    columns.length >= 1 && columns.length <= PK_COLUMNS_MAX,
    () => `a primary key has 1..${PK_COLUMNS_MAX} columns, got ${columns.length}`,
  );
}

/** Appends bytes to a growing buffer; keys are small, so a number[] is enough. */
class KeyWriter {
  readonly bytes: number[] = [];

  column(type: PkColumnType, value: unknown, index: number): void {
    const what = `primary key column ${index} (${type})`;
    this.bytes.push(tagOf(type));
    switch (type) {
      case 'integer': {
        if (typeof value !== 'bigint')
          invalid(`${what} expects a bigint, got ${describeValue(value)}`);
        const u = BigInt.asUintN(64, checkInt64(value, what)) ^ SIGN_BIT;
        for (let shift = 56n; shift >= 0n; shift -= 8n)
          this.bytes.push(Number((u >> shift) & 0xffn));
        return;
      }
      case 'string': {
        if (typeof value !== 'string')
          invalid(`${what} expects a string, got ${describeValue(value)}`);
        // UTF-8 never has fewer bytes than UTF-16 code units: reject huge strings before encoding.
        if (value.length > PK_COLUMN_BYTES_MAX) tooLargeColumn(what, value.length);
        this.escaped(utf8Encode(value, what), what);
        return;
      }
      case 'binary': {
        if (!(value instanceof Uint8Array)) {
          invalid(`${what} expects binary (Uint8Array), got ${describeValue(value)}`);
        }
        this.escaped(value, what);
        return;
      }
      default:
        assertNever(type, 'primary key column type');
    }
  }

  private escaped(data: Uint8Array, what: string): void {
    if (data.length > PK_COLUMN_BYTES_MAX) tooLargeColumn(what, data.length);
    for (const b of data) {
      this.bytes.push(b);
      if (b === ESCAPE) this.bytes.push(ESCAPED_ZERO);
    }
    this.bytes.push(ESCAPE, TERMINATOR);
  }

  checkSize(): void {
    if (this.bytes.length > PK_BYTES_MAX) {
      throw new TesseraError(
        'KEY_TOO_LARGE',
        `encoded primary key is ${this.bytes.length} bytes; the limit is ${PK_BYTES_MAX}`,
        { limit: PK_BYTES_MAX, actual: this.bytes.length },
      );
    }
  }
}

function tooLargeColumn(what: string, actual: number): never {
  throw new TesseraError(
    'KEY_TOO_LARGE',
    `${what} is at least ${actual} bytes; the limit is ${PK_COLUMN_BYTES_MAX}`,
    { limit: PK_COLUMN_BYTES_MAX, actual },
  );
}

/**
 * Encodes a primary key given as its column values in schema order.
 *
 * Contract: for keys `a`, `b` of the same schema, `compareBytes(encode(a),
 * encode(b))` has the sign of the tuple comparison of `a` and `b` (see the
 * module comment), and {@link decodePrimaryKey} returns the values.
 *
 * @param columns the schema's primary-key column types (1..PK_COLUMNS_MAX;
 *   more or fewer is a programmer error).
 * @param values one value per column, of the column's type.
 * @throws TesseraError INVALID_ARGUMENT if the number of values differs from
 *   the number of columns, a value has the wrong type, an integer is outside
 *   the signed 64-bit range or a string holds a lone surrogate;
 *   KEY_TOO_LARGE if a column exceeds {@link PK_COLUMN_BYTES_MAX} or the key
 *   exceeds {@link PK_BYTES_MAX}.
 */
export function encodePrimaryKey(
  columns: readonly PkColumnType[],
  values: readonly PkValue[],
): Uint8Array {
  assertColumns(columns);
  if (values.length !== columns.length) {
    invalid(`primary key has ${values.length} values; the schema has ${columns.length} columns`);
  }
  const w = new KeyWriter();
  columns.forEach((type, i) => w.column(type, values[i], i));
  w.checkSize();
  return Uint8Array.from(w.bytes);
}

/** Which edge of a bound {@link encodeBound} returns. */
export type BoundEdge = 'lower' | 'upper';

/**
 * Encodes a bound of a range scan as a byte string to compare stored keys
 * against.
 *
 * A bound is a tuple of 1..n column values (n = the number of columns) in
 * which any column may be INF_MIN or INF_MAX. It denotes a point in tuple
 * order: INF_MIN in column i lies below every key with the same earlier
 * columns, INF_MAX above every such key, and the columns after the first
 * infinite one are ignored (their finite values are still type-checked). A
 * partial tuple (fewer than n columns) lies below all keys that extend it,
 * exactly like a tuple padded with INF_MIN. Only a bound of n finite values
 * can equal a key.
 *
 * The edge decides what happens to a key equal to the bound. For every row
 * key K (with any suffix the storage layout appends):
 *
 * - `'lower'`: K sorts below the result iff the row is below the bound;
 * - `'upper'`: K sorts below the result iff the row is at or below the bound.
 *
 * The two differ only for a bound of n finite values. Use the lower edge of
 * an inclusive lower bound or an exclusive upper bound, and the upper edge of
 * an inclusive upper bound or an exclusive lower bound; {@link encodeScanRange}
 * does this for GetRange's start and end in both directions.
 *
 * @throws TesseraError as {@link encodePrimaryKey} for a bound's finite
 *   values; INVALID_ARGUMENT if the bound is empty or longer than the key.
 */
export function encodeBound(
  columns: readonly PkColumnType[],
  bound: readonly PkBound[],
  edge: BoundEdge = 'lower',
): Uint8Array {
  assertColumns(columns);
  if (bound.length < 1 || bound.length > columns.length) {
    invalid(`a bound has 1..${columns.length} values for this schema, got ${bound.length}`);
  }
  const w = new KeyWriter();
  let infinity: PkBound | undefined;
  bound.forEach((v, i) => {
    if (v === INF_MIN || v === INF_MAX) {
      infinity ??= v;
    } else if (infinity === undefined) {
      w.column(columns[i]!, v, i);
    } else {
      // Ignored for the order, but a wrongly typed value is still a caller mistake.
      new KeyWriter().column(columns[i]!, v, i);
    }
  });
  w.checkSize();
  // INF_MIN and a partial tuple need no byte: a prefix sorts before all its extensions.
  if (infinity === INF_MAX) w.bytes.push(BOUND_INF_MAX_BYTE);
  const bytes = Uint8Array.from(w.bytes);
  const isKey = infinity === undefined && bound.length === columns.length;
  return edge === 'upper' && isKey ? prefixEnd(bytes) : bytes;
}

/**
 * The smallest byte string above every string that starts with `prefix`:
 * `prefix` without its trailing 0xff bytes, last byte plus one. Every encoded
 * key starts with a type tag below 0xff, so it always exists for one.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  assert(n > 0, 'prefixEnd of an empty or all-0xff prefix');
  const out = prefix.slice(0, n);
  out[n - 1]!++;
  return out;
}

/** Direction of a range scan, as Table Store's GetRange. */
export type ScanDirection = 'forward' | 'backward';

/** A half-open byte interval `[start, end)` of stored keys, as the state engine scans. */
export interface KeyRange {
  readonly start: Uint8Array;
  readonly end: Uint8Array;
}

/**
 * The byte interval holding exactly the rows of a GetRange request.
 *
 * Forward: rows with `start <= row < end` (start inclusive, end exclusive);
 * the scan reads the interval upwards. Backward: rows with
 * `end < row <= start` (start is the inclusive upper bound, end the exclusive
 * lower bound); the scan reads the interval downwards. Bounds are as in
 * {@link encodeBound}. If the bounds are the wrong way round for the
 * direction, `start >= end` in bytes and the interval is empty.
 *
 * @throws TesseraError as {@link encodeBound}.
 */
export function encodeScanRange(
  columns: readonly PkColumnType[],
  start: readonly PkBound[],
  end: readonly PkBound[],
  direction: ScanDirection,
): KeyRange {
  switch (direction) {
    case 'forward':
      return {
        start: encodeBound(columns, start, 'lower'),
        end: encodeBound(columns, end, 'lower'),
      };
    case 'backward':
      return {
        start: encodeBound(columns, end, 'upper'),
        end: encodeBound(columns, start, 'upper'),
      };
    default:
      return assertNever(direction, 'scan direction');
  }
}

function malformed(at: number, what: string): never {
  invalid(`malformed primary key encoding at byte ${at}: ${what}`);
}

/** A decoded key prefix and where it ended. */
export interface DecodedPrefix {
  readonly values: PkValue[];
  /** Offset of the first byte after the key. */
  readonly end: number;
}

/**
 * Decodes the primary key that starts at `offset` of `bytes` and returns its
 * values and where it ends; the bytes after it (a storage suffix) are not
 * looked at. Every column's tag is checked against the schema.
 *
 * @throws TesseraError INVALID_ARGUMENT if the bytes are not a canonical
 *   encoding of a key of these columns (wrong tag, truncated, bad escape,
 *   invalid UTF-8).
 */
export function decodePrimaryKeyPrefix(
  columns: readonly PkColumnType[],
  bytes: Uint8Array,
  offset = 0,
): DecodedPrefix {
  assertColumns(columns);
  const values: PkValue[] = [];
  let at = offset;
  columns.forEach((type, i) => {
    if (at >= bytes.length) malformed(at, `truncated before column ${i}`);
    if (bytes[at] !== tagOf(type)) {
      malformed(at, `column ${i} (${type}) has tag 0x${bytes[at]!.toString(16)}`);
    }
    at++;
    if (type === 'integer') {
      if (at + INTEGER_BODY_BYTES > bytes.length) malformed(at, `truncated integer column ${i}`);
      let u = 0n;
      for (let k = 0; k < INTEGER_BODY_BYTES; k++) u = (u << 8n) | BigInt(bytes[at + k]!);
      values.push(BigInt.asIntN(64, u ^ SIGN_BIT));
      at += INTEGER_BODY_BYTES;
      return;
    }
    const data: number[] = [];
    for (;;) {
      if (at >= bytes.length) malformed(at, `unterminated ${type} column ${i}`);
      const b = bytes[at++]!;
      if (b !== ESCAPE) {
        data.push(b);
        continue;
      }
      const next = bytes[at++];
      if (next === ESCAPED_ZERO) data.push(0);
      else if (next === TERMINATOR) break;
      else malformed(at - 1, `bad escape in ${type} column ${i}`);
    }
    const raw = Uint8Array.from(data);
    values.push(type === 'string' ? utf8Decode(raw, `primary key column ${i} (string)`) : raw);
  });
  return { values, end: at };
}

/**
 * Decodes a key written by {@link encodePrimaryKey}: the inverse of it.
 *
 * @throws TesseraError INVALID_ARGUMENT as {@link decodePrimaryKeyPrefix},
 *   and if bytes follow the key.
 */
export function decodePrimaryKey(columns: readonly PkColumnType[], bytes: Uint8Array): PkValue[] {
  const { values, end } = decodePrimaryKeyPrefix(columns, bytes);
  if (end !== bytes.length) malformed(end, `${bytes.length - end} bytes after the key`);
  return values;
}
