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
 * Attribute values are stored as values.ts encodes them, keeping their exact
 * type (a bigint never comes back as a number, nor a double as an integer).
 */
import { assertNever } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import type { AttributeValue } from './types.ts';
import { decodeAttribute, encodeAttribute } from './values.ts';

export { INT64_MAX, INT64_MIN } from './int64.ts';

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

const utf8Encoder = new TextEncoder();

function corrupt(what: string): TesseraError {
  return new TesseraError('CORRUPTION', `malformed table record value: ${what}`);
}

/** Encodes a data record's value (see the table in this file's header). */
export function encodeRecordValue(record: DataRecordValue): Uint8Array {
  switch (record.kind) {
    case 'cell': {
      const value = encodeAttribute(record.value);
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
  if (kind === KIND_CELL) {
    try {
      return { kind: 'cell', value: decodeAttribute(bytes.subarray(1)) };
    } catch (e) {
      // Stored bytes that do not decode are damage, not a bad request.
      throw corrupt(e instanceof Error ? e.message : String(e));
    }
  }
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
