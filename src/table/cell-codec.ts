/**
 * The stored form of data records' values (see mvcc-layout.ts for the keys).
 * Private to the row store and replaceable: nothing outside src/table reads
 * these bytes.
 *
 * A record value is one kind byte followed by the kind's payload:
 *
 * | kind | byte | payload                                    |
 * | ---- | ---- | ------------------------------------------ |
 * | cell | 0x01 | type byte + the attribute value (below)    |
 * | column delete marker | 0x02 | none                     |
 * | version tombstone    | 0x03 | none                     |
 * | row delete marker    | 0x04 | none                     |
 *
 * Attribute values keep their exact type (a bigint never comes back as a
 * number, nor a double as an integer): type byte 0x01 string (UTF-8 bytes),
 * 0x02 integer (8 bytes, big-endian two's complement), 0x03 double (8 bytes,
 * IEEE 754 big-endian), 0x04 boolean (one byte, 0 or 1), 0x05 binary (raw bytes).
 */
import { assertNever } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import type { AttributeValue } from './types.ts';

/** The smallest and largest 64-bit signed integers: the domain of integer cells. */
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** What a data record holds. */
export type DataRecordValue =
  | { readonly kind: 'cell'; readonly value: AttributeValue }
  | { readonly kind: 'column-delete' }
  | { readonly kind: 'version-tombstone' }
  | { readonly kind: 'row-delete' };

const KIND_CELL = 0x01;
const KIND_COLUMN_DELETE = 0x02;
const KIND_VERSION_TOMBSTONE = 0x03;
const KIND_ROW_DELETE = 0x04;

const TYPE_STRING = 0x01;
const TYPE_INTEGER = 0x02;
const TYPE_DOUBLE = 0x03;
const TYPE_BOOLEAN = 0x04;
const TYPE_BINARY = 0x05;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Encodes an attribute value with its type. Integers must lie within int64
 * and doubles must be finite: callers validate values first (an out-of-domain
 * value here is a programmer error).
 */
export function encodeAttributeValue(value: AttributeValue): Uint8Array {
  switch (typeof value) {
    case 'string': {
      const body = utf8Encoder.encode(value);
      const out = new Uint8Array(1 + body.length);
      out[0] = TYPE_STRING;
      out.set(body, 1);
      return out;
    }
    case 'bigint': {
      const out = new Uint8Array(9);
      out[0] = TYPE_INTEGER;
      new DataView(out.buffer).setBigInt64(1, value, false);
      return out;
    }
    case 'number': {
      const out = new Uint8Array(9);
      out[0] = TYPE_DOUBLE;
      new DataView(out.buffer).setFloat64(1, value, false);
      return out;
    }
    case 'boolean':
      return Uint8Array.of(TYPE_BOOLEAN, value ? 1 : 0);
    default: {
      const out = new Uint8Array(1 + value.length);
      out[0] = TYPE_BINARY;
      out.set(value, 1);
      return out;
    }
  }
}

function corrupt(what: string): TesseraError {
  return new TesseraError('CORRUPTION', `malformed table record value: ${what}`);
}

/** Decodes {@link encodeAttributeValue}'s output; malformed bytes throw CORRUPTION. */
export function decodeAttributeValue(bytes: Uint8Array): AttributeValue {
  const body = bytes.subarray(1);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  switch (bytes[0]) {
    case TYPE_STRING:
      try {
        return utf8Decoder.decode(body);
      } catch {
        throw corrupt('string cell is not UTF-8');
      }
    case TYPE_INTEGER:
      if (body.length !== 8) throw corrupt(`integer cell of ${body.length} bytes`);
      return view.getBigInt64(0, false);
    case TYPE_DOUBLE:
      if (body.length !== 8) throw corrupt(`double cell of ${body.length} bytes`);
      return view.getFloat64(0, false);
    case TYPE_BOOLEAN:
      if (body.length !== 1 || body[0]! > 1) throw corrupt('boolean cell');
      return body[0] === 1;
    case TYPE_BINARY:
      return new Uint8Array(body);
    default:
      throw corrupt(`unknown value type ${String(bytes[0])}`);
  }
}

/** Encodes a data record's value (see the table in this file's header). */
export function encodeRecordValue(record: DataRecordValue): Uint8Array {
  switch (record.kind) {
    case 'cell': {
      const value = encodeAttributeValue(record.value);
      const out = new Uint8Array(1 + value.length);
      out[0] = KIND_CELL;
      out.set(value, 1);
      return out;
    }
    case 'column-delete':
      return Uint8Array.of(KIND_COLUMN_DELETE);
    case 'version-tombstone':
      return Uint8Array.of(KIND_VERSION_TOMBSTONE);
    case 'row-delete':
      return Uint8Array.of(KIND_ROW_DELETE);
    default:
      return assertNever(record, 'record kind');
  }
}

/** Decodes {@link encodeRecordValue}'s output; malformed bytes throw CORRUPTION. */
export function decodeRecordValue(bytes: Uint8Array): DataRecordValue {
  const kind = bytes[0];
  if (kind === KIND_CELL) return { kind: 'cell', value: decodeAttributeValue(bytes.subarray(1)) };
  if (bytes.length !== 1) throw corrupt(`record of kind ${String(kind)} has a payload`);
  if (kind === KIND_COLUMN_DELETE) return { kind: 'column-delete' };
  if (kind === KIND_VERSION_TOMBSTONE) return { kind: 'version-tombstone' };
  if (kind === KIND_ROW_DELETE) return { kind: 'row-delete' };
  throw corrupt(`unknown record kind ${String(kind)}`);
}

/** The encoded size of a value in bytes (what value-size limits measure). */
export function attributeValueBytes(value: AttributeValue): number {
  switch (typeof value) {
    case 'string':
      return 1 + utf8Encoder.encode(value).length;
    case 'bigint':
    case 'number':
      return 9;
    case 'boolean':
      return 2;
    default:
      return 1 + value.length;
  }
}
