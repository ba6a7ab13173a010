/**
 * The table options the row store obeys and the limits it enforces, with the
 * checks that turn a violation into a clear operational error. Every check
 * runs before a write touches the view, so a rejected request changes nothing.
 */
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import { attributeValueBytes } from './cell-codec.ts';
import { checkAttributeValue } from './condition.ts';
import type { AttributeValue, Version } from './types.ts';

/** Per-table settings of versioning and expiry (Table Store's table options; see schema.ts). */
export type { TableOptions } from './schema.ts';
import type { TableOptions } from './schema.ts';

/** Largest encoded row key, in bytes (KEY_TOO_LARGE beyond). */
export const ROW_KEY_BYTES_MAX = 4096;
/** Largest column name, in UTF-8 bytes (INVALID_ARGUMENT beyond). */
export const COLUMN_NAME_BYTES_MAX = 255;
/** Largest encoded cell value, in bytes (VALUE_TOO_LARGE beyond). */
export const CELL_VALUE_BYTES_MAX = 2 * 1024 * 1024;
/** Largest total of encoded values and column names in one write (REQUEST_TOO_LARGE beyond). */
export const ROW_WRITE_BYTES_MAX = 4 * 1024 * 1024;
/** Most columns with a visible cell a row may have after a write (INVALID_ARGUMENT beyond). */
export const COLUMNS_PER_ROW_MAX = 1024;
/** Most cells in one putRow (REQUEST_TOO_LARGE beyond). */
export const CELLS_PER_WRITE_MAX = 1024;
/** Most operations in one updateRow (REQUEST_TOO_LARGE beyond). */
export const OPS_PER_UPDATE_MAX = 1024;
/** Most columns a read may name (INVALID_ARGUMENT beyond). */
export const COLUMNS_PER_READ_MAX = 1024;
/** Upper bound of a table's maxVersions and of a read's maxVersions. */
export const VERSIONS_PER_CELL_MAX = 1000;
/** Largest ttlSeconds and maxVersionOffsetSeconds: 100 years. */
export const TABLE_SECONDS_MAX = 100 * 366 * 24 * 3600;
/** Most rows one getRange page may return. */
export const RANGE_ROWS_MAX = 5000;
/** Largest bytesMax of one getRange page. */
export const RANGE_PAGE_BYTES_MAX = 4 * 1024 * 1024;
/**
 * Records one getRange page examines before it stops at the next row
 * boundary, whether or not the rows it met were returned (filtered-out,
 * deleted and expired rows count too), so every page terminates.
 */
export const RANGE_PAGE_RECORDS_MAX = 65_536;
/** Largest record budget of one gcRange call. */
export const GC_BUDGET_RECORDS_MAX = 1_000_000;

const utf8Encoder = new TextEncoder();
const MS_PER_SECOND = 1000;

function invalid(message: string, details?: { limit: number; actual: number }): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message, details);
}

/** Throws INVALID_ARGUMENT unless the table options are within their domains. */
export function checkTableOptions(opts: TableOptions): void {
  if (
    !Number.isInteger(opts.maxVersions) ||
    opts.maxVersions < 1 ||
    opts.maxVersions > VERSIONS_PER_CELL_MAX
  ) {
    throw invalid(`maxVersions must be an integer in 1..${VERSIONS_PER_CELL_MAX}`);
  }
  const seconds = (v: number): boolean => Number.isInteger(v) && v <= TABLE_SECONDS_MAX;
  if (opts.ttlSeconds !== null && !(seconds(opts.ttlSeconds) && opts.ttlSeconds > 0)) {
    throw invalid(`ttlSeconds must be null or an integer in 1..${TABLE_SECONDS_MAX}`);
  }
  if (!(seconds(opts.maxVersionOffsetSeconds) && opts.maxVersionOffsetSeconds >= 0)) {
    throw invalid(`maxVersionOffsetSeconds must be an integer in 0..${TABLE_SECONDS_MAX}`);
  }
}

/** Asserts the caller's clock reading: `now` is milliseconds since the epoch. */
export function assertNow(now: number): void {
  assert(Number.isSafeInteger(now) && now >= 0, () => `now must be a non-negative ms, got ${now}`);
}

/** Versions older than this are expired (invisible) at `now`; -Infinity without a TTL. */
export function expiredBeforeMs(opts: TableOptions, now: number): number {
  return opts.ttlSeconds === null ? -Infinity : now - opts.ttlSeconds * MS_PER_SECOND;
}

/** The table's version offset in milliseconds. */
export function versionOffsetMs(opts: TableOptions): number {
  return opts.maxVersionOffsetSeconds * MS_PER_SECOND;
}

/** Throws KEY_TOO_LARGE if the encoded row key exceeds {@link ROW_KEY_BYTES_MAX}. */
export function checkRowKey(rowKey: Uint8Array): void {
  if (rowKey.length > ROW_KEY_BYTES_MAX) {
    throw new TesseraError(
      'KEY_TOO_LARGE',
      `row key of ${rowKey.length} bytes exceeds ${ROW_KEY_BYTES_MAX}`,
      { limit: ROW_KEY_BYTES_MAX, actual: rowKey.length },
    );
  }
}

/** Throws INVALID_ARGUMENT unless `column` is a non-empty name within {@link COLUMN_NAME_BYTES_MAX}. */
export function checkColumnName(column: string): number {
  if (typeof column !== 'string' || column.length === 0) {
    throw invalid('a column name must be a non-empty string');
  }
  const bytes = utf8Encoder.encode(column).length;
  if (bytes > COLUMN_NAME_BYTES_MAX) {
    throw invalid(`column name of ${bytes} bytes exceeds ${COLUMN_NAME_BYTES_MAX}`, {
      limit: COLUMN_NAME_BYTES_MAX,
      actual: bytes,
    });
  }
  return bytes;
}

/**
 * Throws unless `value` is storable: INVALID_ARGUMENT for an integer outside
 * int64 or a non-finite double, VALUE_TOO_LARGE beyond
 * {@link CELL_VALUE_BYTES_MAX}. Returns the encoded size.
 */
export function checkCellValue(column: string, value: AttributeValue): number {
  checkAttributeValue(value, `column ${JSON.stringify(column)}`);
  const bytes = attributeValueBytes(value);
  if (bytes > CELL_VALUE_BYTES_MAX) {
    throw new TesseraError(
      'VALUE_TOO_LARGE',
      `value of column ${JSON.stringify(column)} is ${bytes} bytes, more than ${CELL_VALUE_BYTES_MAX}`,
      { limit: CELL_VALUE_BYTES_MAX, actual: bytes },
    );
  }
  return bytes;
}

/** Throws INVALID_ARGUMENT unless `version` is a non-negative safe integer (ms). */
export function checkVersion(version: Version, what: string): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw invalid(`${what}: a version must be a non-negative integer of ms, got ${version}`);
  }
}

/**
 * Throws INVALID_ARGUMENT unless a client-given version lies within
 * `now ± maxVersionOffset` (Table Store's max version offset).
 */
export function checkClientVersion(
  column: string,
  version: Version,
  opts: TableOptions,
  now: number,
): void {
  checkVersion(version, `column ${JSON.stringify(column)}`);
  const offsetMs = versionOffsetMs(opts);
  if (Math.abs(version - now) > offsetMs) {
    throw invalid(
      `version ${version} of column ${JSON.stringify(column)} is outside now ± ` +
        `maxVersionOffset (${now - offsetMs}..${now + offsetMs})`,
    );
  }
}

/** Throws `code` with a limit message when `actual` exceeds `limit`. */
export function checkCount(
  code: 'INVALID_ARGUMENT' | 'REQUEST_TOO_LARGE',
  what: string,
  actual: number,
  limit: number,
): void {
  if (actual > limit) {
    throw new TesseraError(code, `${what}: ${actual} exceeds the limit of ${limit}`, {
      limit,
      actual,
    });
  }
}
