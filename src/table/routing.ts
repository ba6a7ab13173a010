/**
 * Where a table's rows live among the data ranges. Ranges split the cluster's
 * key space of routing keys (strings, in UTF-8 byte order); the rows of table
 * NAME map into it as
 *
 *   "\u0000table/NAME/" + hex(encoded partition key)
 *
 * with lowercase hex, which keeps byte order (each byte is two hex digits of
 * the same order), so the table's rows occupy one contiguous span of routing
 * keys, ordered as its primary keys. A row is routed by its partition key
 * (the first primary-key column) alone: all rows of one partition key stay in
 * one range, which is what auto-increment columns (strictly increasing within
 * a partition key) and Table Store's partitioning rely on.
 *
 * A range boundary inside a table's span must therefore sit at a partition
 * key: the encoding of exactly one primary-key column ({@link
 * partitionSplitKey}; {@link checkSplitKey} rejects anything else). Then, for
 * any row key K and boundary B, K >= B exactly when K's partition key encoding
 * is >= B (column encodings are prefix-free), so routing by the partition key
 * and clamping a scan to a range's span by the full row key agree.
 *
 * Pure: used alike by the server (to pick the range of a request and clamp
 * scans to it) and by the client (to send a request to its range's leader).
 */
import { TesseraError } from '../core/errors.ts';
import {
  compareBytes,
  decodePrimaryKeyPrefix,
  encodePrimaryKey,
  TAG_BINARY,
  TAG_INTEGER,
  TAG_STRING,
} from './key-codec.ts';
import type { PkColumnType, PkValue } from './types.ts';
import { utf8Encode } from './utf8.ts';

const TABLE_SPACE = '\u0000table/';

/** The routing key a table's span starts at: a split here starts the table in its own range. */
export const tableRoutingKey = (name: string): string => TABLE_SPACE + name;

/** The routing key of the table's rows before any hex: every row's key starts with it. */
export const tableRowsPrefix = (name: string): string => `${TABLE_SPACE}${name}/`;

/**
 * The first routing key above all of the table's rows (`/` + 1 = `0`; table
 * names hold no `/`, so no other table's keys fall between).
 */
export const tableRowsEnd = (name: string): string => `${TABLE_SPACE}${name}0`;

const HEX = '0123456789abcdef';

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX[b >> 4]! + HEX[b & 15]!;
  return out;
}

/** The bytes of lowercase hex `text`, or null if it is not even-length lowercase hex. */
export function fromHex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * The routing key of a position among the table's rows: an encoded row key,
 * or a scan bound's encoding (a prefix, or with an INF_MAX byte).
 */
export const routingKeyAt = (name: string, bytes: Uint8Array): string =>
  tableRowsPrefix(name) + toHex(bytes);

/** The bytes of the partition-key column at the start of an encoded row key. */
export function partitionPrefix(columns: readonly PkColumnType[], rowKey: Uint8Array): Uint8Array {
  const { end } = decodePrimaryKeyPrefix(columns.slice(0, 1), rowKey);
  return rowKey.slice(0, end);
}

/**
 * The routing key of a row (its partition key decides). `rowKey` may also be
 * the leading columns of a row whose auto-increment column the range assigns.
 */
export function rowRoutingKey(
  name: string,
  columns: readonly PkColumnType[],
  rowKey: Uint8Array,
): string {
  return routingKeyAt(name, partitionPrefix(columns, rowKey));
}

/** The split key that starts a range at partition key `value` of table `name`. */
export function partitionSplitKey(name: string, type: PkColumnType, value: PkValue): string {
  return routingKeyAt(name, encodePrimaryKey([type], [value]));
}

const TYPE_OF_TAG = new Map<number, PkColumnType>([
  [TAG_INTEGER, 'integer'],
  [TAG_STRING, 'string'],
  [TAG_BINARY, 'binary'],
]);

/** True if `bytes` is exactly one encoded primary-key column of any type. */
function isOneColumn(bytes: Uint8Array): boolean {
  const type = bytes.length > 0 ? TYPE_OF_TAG.get(bytes[0]!) : undefined;
  if (type === undefined) return false;
  try {
    return decodePrimaryKeyPrefix([type], bytes).end === bytes.length;
  } catch {
    return false;
  }
}

/** Byte order of two routing keys (UTF-8), the order of range boundaries. */
export function compareRoutingKeys(a: string, b: string): number {
  return compareBytes(utf8Encode(a, 'routing key'), utf8Encode(b, 'routing key'));
}

/** The table name whose rows span holds `key`, or null for keys outside every rows span. */
function rowsTableOf(key: string): string | null {
  if (!key.startsWith(TABLE_SPACE)) return null;
  const slash = key.indexOf('/', TABLE_SPACE.length);
  return slash < 0 ? null : key.slice(TABLE_SPACE.length, slash);
}

/**
 * Checks a split key: one inside a table's rows span must be a partition
 * key's routing key ({@link partitionSplitKey}).
 *
 * @throws TesseraError INVALID_ARGUMENT otherwise.
 */
export function checkSplitKey(key: string): void {
  const table = rowsTableOf(key);
  if (table === null) return;
  const bytes = fromHex(key.slice(tableRowsPrefix(table).length));
  if (bytes === null || !isOneColumn(bytes)) {
    throw new TesseraError(
      'INVALID_ARGUMENT',
      `split key inside table ${table}'s rows must be a partition key (table:${table}:TYPE:VALUE)`,
    );
  }
}

/**
 * The row keys a range `[start, end)` of routing keys holds of table `name`:
 * `start <= rowKey < end` over encoded row keys (null: unbounded on that
 * side), or null when the range holds none of the table's rows.
 */
export function rowSpanOf(
  name: string,
  start: string,
  end: string | null,
): { start: Uint8Array | null; end: Uint8Array | null } | null {
  const prefix = tableRowsPrefix(name);
  const rowsEnd = tableRowsEnd(name);
  const below = (a: string, b: string): boolean => compareRoutingKeys(a, b) < 0;
  if (!below(start, rowsEnd)) return null;
  if (end !== null && !below(prefix, end)) return null;
  const bound = (key: string): Uint8Array => {
    const bytes = fromHex(key.slice(prefix.length));
    if (bytes === null) {
      throw new TesseraError(
        'INTERNAL',
        `range boundary inside table ${name} is not a row position`,
      );
    }
    return bytes;
  };
  return {
    start: below(prefix, start) ? bound(start) : null,
    end: end !== null && below(end, rowsEnd) ? bound(end) : null,
  };
}
