/**
 * The row operations of the table data model (Table Store model: rows of
 * versioned cells, TTL, max versions, conditional writes, range reads) as
 * pure functions over a {@link KvView}: the caller passes the table options
 * and its clock reading `now` (ms); nothing here does I/O or reads a clock.
 * mvcc-layout.ts fixes the keys, row-records.ts the visibility rule.
 *
 * Contract with the caller: `now` never decreases between calls on one view
 * (it is the range leader's clock as the applied command carries it). TTL
 * expiry and GC rely on it.
 *
 * Writes validate everything and evaluate their condition before they touch
 * the view: an operation that throws has changed nothing.
 *
 * Deletes are markers, not snapshots: a row delete marker at version v hides
 * every version <= v of the row for every reader (reads `at` an older version
 * included), as a column delete marker does for one column. So that a marker
 * never silently swallows a later write, a write naming a version at or
 * below a live marker covering its column is refused (INVALID_ARGUMENT), and
 * a write without a version gets `max(now, marker + 1)`, which is `now`
 * except within the millisecond of a delete.
 */
import { assert, assertNever } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import { attributeValueBytes, encodeRecordValue, INT64_MAX, INT64_MIN } from './cell-codec.ts';
import type { ColumnCondition, RowCondition } from './condition.ts';
import { checkColumnCondition, checkRowCondition, evaluateColumnCondition } from './condition.ts';
import type { KvView } from './kv-view.ts';
import { compareBytes } from './kv-view.ts';
import {
  columnKey,
  DATA_END,
  DATA_START,
  dataKeyRow,
  rowMarkerKey,
  rowPrefix,
  rowSpanEnd,
} from './mvcc-layout.ts';
import type { TableOptions } from './row-limits.ts';
import {
  assertNow,
  CELLS_PER_WRITE_MAX,
  checkCellValue,
  checkClientVersion,
  checkColumnName,
  checkCount,
  checkRowKey,
  checkTableOptions,
  checkVersion,
  COLUMNS_PER_READ_MAX,
  COLUMNS_PER_ROW_MAX,
  GC_BUDGET_RECORDS_MAX,
  OPS_PER_UPDATE_MAX,
  RANGE_PAGE_BYTES_MAX,
  RANGE_PAGE_RECORDS_MAX,
  RANGE_ROWS_MAX,
  ROW_WRITE_BYTES_MAX,
  VERSIONS_PER_CELL_MAX,
} from './row-limits.ts';
import type { RowRecords } from './row-records.ts';
import {
  classifyColumn,
  classifyRowMarkers,
  hiddenUpTo,
  loadRow,
  newestRowMarker,
  parseRow,
  scanPairs,
  visibleCells,
} from './row-records.ts';
import type { AttributeValue, Cell, Version } from './types.ts';

export type { TableOptions } from './row-limits.ts';

/** One cell of a putRow. */
export interface CellInput {
  readonly column: string;
  readonly value: AttributeValue;
  /** Client-given version within `now ± maxVersionOffset`; default: `now`. */
  readonly version?: Version;
}

/** One operation of an updateRow; each column may appear in one operation only. */
export type UpdateOp =
  /** Writes one version of a column (default version: see the file header). */
  | {
      readonly type: 'put';
      readonly column: string;
      readonly value: AttributeValue;
      readonly version?: Version;
    }
  /** Deletes every version of a column (a column delete marker at `now`). */
  | { readonly type: 'delete-column'; readonly column: string }
  /** Deletes one version of a column; a version without a cell is left alone. */
  | { readonly type: 'delete-version'; readonly column: string; readonly version: Version }
  /**
   * Adds `delta` to an integer column (a missing column counts as 0) and
   * writes the sum as a new version; INVALID_ARGUMENT if the latest value is
   * not an integer or the sum leaves int64.
   */
  | { readonly type: 'increment'; readonly column: string; readonly delta: bigint };

/** A row as reads return it. */
export interface Row {
  readonly rowKey: Uint8Array;
  /** Ordered by column (UTF-8 bytes), then newest version first. Never empty. */
  readonly cells: readonly Cell[];
}

/** A version interval: `start <= version < end`. */
export interface TimeRange {
  readonly start: Version;
  readonly end: Version;
}

/** Options of {@link getRow}. */
export interface GetRowOptions {
  /** Only these columns (at most {@link COLUMNS_PER_READ_MAX}); default: all. */
  readonly columns?: readonly string[];
  /** Most versions returned per column, newest first; default 1. */
  readonly maxVersions?: number;
  /** Only versions in this interval. */
  readonly timeRange?: TimeRange;
  /**
   * Only versions <= `at`: the newest visible version as of `at`. Deletes
   * and the table's maxVersions still apply to the whole history (see the
   * file header); this is not a snapshot of the past.
   */
  readonly at?: Version;
}

/** Options of {@link getRange}. */
export interface GetRangeOptions extends GetRowOptions {
  readonly direction: 'forward' | 'backward';
  /** Most rows in the page, 1..{@link RANGE_ROWS_MAX}. */
  readonly limit: number;
  /**
   * Most bytes in the page, 1..{@link RANGE_PAGE_BYTES_MAX}, counted as row
   * key bytes plus, per cell, column name bytes, encoded value bytes and 8.
   * A page holds at least one row, even a larger one.
   */
  readonly bytesMax: number;
  /** Keep only rows whose latest visible values satisfy it (all columns, not just `columns`). */
  readonly filter?: ColumnCondition;
  /** Leave out a row equal to `start` (forward: rows > start; backward: rows < start). */
  readonly startExclusive?: boolean;
  /**
   * Read only rows with `span.start <= rowKey < span.end` (null: unbounded),
   * the rows of one range of the table (src/table/routing.ts).
   */
  readonly span?: { readonly start: Uint8Array | null; readonly end: Uint8Array | null };
}

/** One page of {@link getRange}. */
export interface RangePage {
  readonly rows: readonly Row[];
  /** Where the next page starts (its `start`), or null when the range is exhausted. */
  readonly next: Uint8Array | null;
}

/** What one {@link gcRange} call did. */
export interface GcResult {
  /** Records deleted. */
  readonly removed: number;
  /** Records examined. */
  readonly examined: number;
  /** The row key to resume from (the next call's `start`), or null when the range is done. */
  readonly next: Uint8Array | null;
}

// ---------------------------------------------------------------------------
// Writes.
// ---------------------------------------------------------------------------

/** A write's changes, staged until every check has passed. */
interface Staged {
  readonly deletes: Uint8Array[];
  readonly puts: Array<[Uint8Array, Uint8Array]>;
}

function applyStaged(view: KvView, staged: Staged): void {
  for (const key of staged.deletes) view.delete(key);
  for (const [key, value] of staged.puts) view.put(key, value);
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message);
}

function prepare(view: KvView, rowKey: Uint8Array, opts: TableOptions, now: number): RowRecords {
  assertNow(now);
  checkTableOptions(opts);
  checkRowKey(rowKey);
  return loadRow(view, rowKey);
}

function checkCondition(
  condition: RowCondition | undefined,
  visible: ReadonlyMap<string, readonly Cell[]>,
): void {
  if (condition === undefined) return;
  if (condition.columnCondition !== undefined) checkColumnCondition(condition.columnCondition);
  checkRowCondition(condition, {
    exists: visible.size > 0,
    latest: (column) => visible.get(column)?.[0]?.value,
  });
}

/** Stages the deletion of every record of the row with a version >= `from`. */
function deleteFrom(row: RowRecords, from: Version, staged: Staged): void {
  for (const m of row.rowMarkers) if (m.version >= from) staged.deletes.push(m.key);
  for (const records of row.columns.values()) {
    for (const r of records) if (r.version >= from) staged.deletes.push(r.key);
  }
}

/**
 * Replaces the row (Table Store PutRow): afterwards its visible cells are
 * exactly `cells` (those that the table's maxVersions and TTL let through).
 * Versions absent from `cells` default to `now`; given ones must lie within
 * `now ± maxVersionOffset`. With m the smallest of `now` and the new
 * versions, the row's records at versions >= m are removed and a row delete
 * marker at m - 1 hides the older ones. Several versions of one column may be given; one
 * (column, version) pair only once.
 *
 * @throws INVALID_ARGUMENT (bad column, value, version, options, duplicate),
 *   KEY_TOO_LARGE, VALUE_TOO_LARGE, REQUEST_TOO_LARGE, CONDITION_FAILED.
 */
export function putRow(
  view: KvView,
  rowKey: Uint8Array,
  cells: readonly CellInput[],
  opts: TableOptions,
  now: number,
  condition?: RowCondition,
): void {
  const row = prepare(view, rowKey, opts, now);
  checkCount('REQUEST_TOO_LARGE', 'cells in one putRow', cells.length, CELLS_PER_WRITE_MAX);
  const seen = new Set<string>();
  const columns = new Set<string>();
  let bytes = 0;
  for (const c of cells) {
    bytes += checkColumnName(c.column) + checkCellValue(c.column, c.value);
    if (c.version !== undefined) checkClientVersion(c.column, c.version, opts, now);
    const id = `${c.version ?? now}\u0000${c.column}`;
    if (seen.has(id)) {
      throw invalid(`column ${JSON.stringify(c.column)} version ${c.version ?? now} given twice`);
    }
    seen.add(id);
    columns.add(c.column);
  }
  checkCount('REQUEST_TOO_LARGE', 'bytes in one putRow', bytes, ROW_WRITE_BYTES_MAX);
  checkCount('INVALID_ARGUMENT', 'columns in a row', columns.size, COLUMNS_PER_ROW_MAX);
  checkCondition(condition, visibleCells(row, opts, now));

  const staged: Staged = { deletes: [], puts: [] };
  const m = Math.min(now, ...cells.map((c) => c.version ?? now));
  deleteFrom(row, m, staged);
  if (m >= 1) {
    staged.puts.push([rowMarkerKey(rowKey, m - 1), encodeRecordValue({ kind: 'row-delete' })]);
  }
  for (const c of cells) {
    staged.puts.push([
      columnKey(rowKey, c.column, c.version ?? now),
      encodeRecordValue({ kind: 'cell', value: c.value }),
    ]);
  }
  applyStaged(view, staged);
}

/**
 * Deletes the row: a row delete marker at `now` hides every version <= now,
 * and records at later versions (client versions ahead of `now`) are removed.
 *
 * @throws INVALID_ARGUMENT (options), KEY_TOO_LARGE, CONDITION_FAILED.
 */
export function deleteRow(
  view: KvView,
  rowKey: Uint8Array,
  opts: TableOptions,
  now: number,
  condition?: RowCondition,
): void {
  const row = prepare(view, rowKey, opts, now);
  checkCondition(condition, visibleCells(row, opts, now));
  const staged: Staged = { deletes: [], puts: [] };
  deleteFrom(row, now + 1, staged);
  staged.puts.push([rowMarkerKey(rowKey, now), encodeRecordValue({ kind: 'row-delete' })]);
  applyStaged(view, staged);
}

/** The version a write without one gets: `now`, or just above a marker in the same ms. */
function defaultVersion(row: RowRecords, column: string, now: number): Version {
  return Math.max(now, hiddenUpTo(row, column) + 1);
}

/**
 * Applies `ops` to the row atomically (Table Store UpdateRow); other columns
 * keep their versions. Returns the cells written by `increment` ops, in op
 * order.
 *
 * @throws INVALID_ARGUMENT (bad column, value, version, duplicate column,
 *   non-integer increment target, int64 overflow, a version at or below a
 *   delete marker covering the column, more than {@link COLUMNS_PER_ROW_MAX}
 *   columns afterwards), KEY_TOO_LARGE, VALUE_TOO_LARGE, REQUEST_TOO_LARGE,
 *   CONDITION_FAILED.
 */
export function updateRow(
  view: KvView,
  rowKey: Uint8Array,
  ops: readonly UpdateOp[],
  opts: TableOptions,
  now: number,
  condition?: RowCondition,
): Cell[] {
  const row = prepare(view, rowKey, opts, now);
  checkCount('REQUEST_TOO_LARGE', 'operations in one updateRow', ops.length, OPS_PER_UPDATE_MAX);
  const touched = new Set<string>();
  let bytes = 0;
  for (const op of ops) {
    bytes += checkColumnName(op.column);
    if (touched.has(op.column)) {
      throw invalid(`column ${JSON.stringify(op.column)} appears in more than one operation`);
    }
    touched.add(op.column);
    if (op.type === 'put') {
      bytes += checkCellValue(op.column, op.value);
      if (op.version !== undefined) checkClientVersion(op.column, op.version, opts, now);
    } else if (op.type === 'delete-version') {
      checkVersion(op.version, `column ${JSON.stringify(op.column)}`);
    } else if (op.type === 'increment') {
      assert(typeof op.delta === 'bigint', 'an increment delta is a bigint');
    }
  }
  checkCount('REQUEST_TOO_LARGE', 'bytes in one updateRow', bytes, ROW_WRITE_BYTES_MAX);
  const visible = visibleCells(row, opts, now);
  checkCondition(condition, visible);

  const staged: Staged = { deletes: [], puts: [] };
  const incremented: Cell[] = [];
  const columnsAfter = new Set(visible.keys());
  const putCell = (column: string, value: AttributeValue, version: Version): void => {
    staged.puts.push([
      columnKey(rowKey, column, version),
      encodeRecordValue({ kind: 'cell', value }),
    ]);
    columnsAfter.add(column);
  };
  for (const op of ops) {
    switch (op.type) {
      case 'put': {
        const upTo = hiddenUpTo(row, op.column);
        if (op.version !== undefined && op.version <= upTo) {
          throw invalid(
            `version ${op.version} of column ${JSON.stringify(op.column)} is not above the ` +
              `delete at version ${upTo}; it would stay hidden`,
          );
        }
        putCell(op.column, op.value, op.version ?? defaultVersion(row, op.column, now));
        break;
      }
      case 'delete-column':
        for (const r of row.columns.get(op.column) ?? []) {
          if (r.version > now) staged.deletes.push(r.key);
        }
        staged.puts.push([
          columnKey(rowKey, op.column, now),
          encodeRecordValue({ kind: 'column-delete' }),
        ]);
        columnsAfter.delete(op.column);
        break;
      case 'delete-version': {
        const r = row.columns.get(op.column)?.find((x) => x.version === op.version);
        if (r !== undefined && r.value.kind === 'cell') {
          staged.puts.push([r.key, encodeRecordValue({ kind: 'version-tombstone' })]);
        }
        break;
      }
      case 'increment': {
        const latest = visible.get(op.column)?.[0]?.value ?? 0n;
        if (typeof latest !== 'bigint') {
          throw invalid(`column ${JSON.stringify(op.column)} does not hold an integer`);
        }
        const sum = latest + op.delta;
        if (sum < INT64_MIN || sum > INT64_MAX) {
          throw invalid(`incrementing column ${JSON.stringify(op.column)} overflows int64`);
        }
        const version = defaultVersion(row, op.column, now);
        putCell(op.column, sum, version);
        incremented.push({ column: op.column, value: sum, version });
        break;
      }
      default:
        assertNever(op, 'update op');
    }
  }
  checkCount('INVALID_ARGUMENT', 'columns in a row', columnsAfter.size, COLUMNS_PER_ROW_MAX);
  applyStaged(view, staged);
  return incremented;
}

// ---------------------------------------------------------------------------
// Reads.
// ---------------------------------------------------------------------------

function checkReadOptions(options: GetRowOptions): void {
  const { columns, maxVersions, timeRange, at } = options;
  if (columns !== undefined) {
    checkCount('INVALID_ARGUMENT', 'columns in one read', columns.length, COLUMNS_PER_READ_MAX);
    for (const c of columns) checkColumnName(c);
  }
  if (
    maxVersions !== undefined &&
    !(Number.isInteger(maxVersions) && maxVersions >= 1 && maxVersions <= VERSIONS_PER_CELL_MAX)
  ) {
    throw invalid(`a read's maxVersions must be an integer in 1..${VERSIONS_PER_CELL_MAX}`);
  }
  if (timeRange !== undefined) {
    checkVersion(timeRange.start, 'timeRange.start');
    checkVersion(timeRange.end, 'timeRange.end');
    if (timeRange.start >= timeRange.end) throw invalid('timeRange.start must be below its end');
  }
  if (at !== undefined) checkVersion(at, 'at');
}

/** Projects a row's visible cells through a read's options; null if nothing is left. */
function project(
  rowKey: Uint8Array,
  visible: ReadonlyMap<string, readonly Cell[]>,
  options: GetRowOptions,
): Row | null {
  const wanted = options.columns === undefined ? null : new Set(options.columns);
  const perColumn = options.maxVersions ?? 1;
  const { timeRange, at } = options;
  const cells: Cell[] = [];
  for (const [column, versions] of visible) {
    if (wanted !== null && !wanted.has(column)) continue;
    let taken = 0;
    for (const cell of versions) {
      if (taken >= perColumn) break;
      if (at !== undefined && cell.version > at) continue;
      if (timeRange !== undefined) {
        if (cell.version >= timeRange.end) continue;
        if (cell.version < timeRange.start) break;
      }
      cells.push(cell);
      taken += 1;
    }
  }
  return cells.length === 0 ? null : { rowKey: new Uint8Array(rowKey), cells };
}

/**
 * Reads one row: its visible cells (see row-records.ts), narrowed by
 * `options`, newest first per column. Returns null if no cell is left.
 *
 * @throws INVALID_ARGUMENT (options), KEY_TOO_LARGE.
 */
export function getRow(
  view: KvView,
  rowKey: Uint8Array,
  options: GetRowOptions,
  opts: TableOptions,
  now: number,
): Row | null {
  const row = prepare(view, rowKey, opts, now);
  checkReadOptions(options);
  return project(rowKey, visibleCells(row, opts, now), options);
}

/** A row's records as a range scan meets them, in ascending key order. */
interface ScannedRow {
  readonly rowKey: Uint8Array;
  readonly pairs: Array<[Uint8Array, Uint8Array]>;
}

/**
 * Groups the data records in `[lo, hi)` into rows, in ascending or
 * descending row order; each row's pairs come in ascending key order.
 */
function* scanRows(
  view: KvView,
  lo: Uint8Array,
  hi: Uint8Array | null,
  reverse: boolean,
): Generator<ScannedRow> {
  let current: { rowKey: Uint8Array; prefix: Uint8Array; pairs: Array<[Uint8Array, Uint8Array]> } =
    { rowKey: new Uint8Array(0), prefix: new Uint8Array(0), pairs: [] };
  const finish = (): ScannedRow => {
    if (reverse) current.pairs.reverse();
    return { rowKey: current.rowKey, pairs: current.pairs };
  };
  for (const pair of scanPairs(view, lo, hi, reverse)) {
    if (current.pairs.length > 0 && startsWith(pair[0], current.prefix)) {
      current.pairs.push(pair);
      continue;
    }
    if (current.pairs.length > 0) yield finish();
    const rowKey = dataKeyRow(pair[0]);
    current = { rowKey, prefix: rowPrefix(rowKey), pairs: [pair] };
  }
  if (current.pairs.length > 0) yield finish();
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

const utf8Encoder = new TextEncoder();

function rowBytes(row: Row): number {
  let bytes = row.rowKey.length;
  for (const c of row.cells) {
    bytes += utf8Encoder.encode(c.column).length + attributeValueBytes(c.value) + 8;
  }
  return bytes;
}

/** The data-key interval `[lo, hi)` of the rows a range read or GC covers. */
function dataInterval(
  start: Uint8Array,
  end: Uint8Array | null,
  options: Pick<GetRangeOptions, 'direction' | 'startExclusive' | 'span'>,
): [Uint8Array, Uint8Array] {
  const exclusive = options.startExclusive === true;
  let [lo, hi] =
    options.direction === 'forward'
      ? [exclusive ? rowSpanEnd(start) : rowPrefix(start), end === null ? DATA_END : rowPrefix(end)]
      : // Backward: start is the upper row bound, end the exclusive lower one.
        [
          end === null ? DATA_START : rowSpanEnd(end),
          exclusive ? rowPrefix(start) : rowSpanEnd(start),
        ];
  const span = options.span;
  if (span?.start != null) {
    const spanLo = rowPrefix(span.start);
    if (compareBytes(spanLo, lo) > 0) lo = spanLo;
  }
  if (span?.end != null) {
    const spanHi = rowPrefix(span.end);
    if (compareBytes(spanHi, hi) < 0) hi = spanHi;
  }
  return [lo, hi];
}

/**
 * Reads one page of rows with encoded row keys in a range (Table Store
 * GetRange). Forward: `start <= rowKey < end`, ascending (`end` null: no
 * upper bound). Backward: `end < rowKey <= start`, descending (`end` null:
 * no lower bound). `startExclusive` makes the start bound strict; `span`
 * narrows the interval further. Rows without cells left after projection or rejected by
 * `filter` are skipped. A page ends after `limit` rows, before the row that
 * would take it past `bytesMax`, or at the first row boundary after
 * {@link RANGE_PAGE_RECORDS_MAX} records were examined; `next` then names
 * the row to start the next page from.
 *
 * @throws INVALID_ARGUMENT (options, filter), KEY_TOO_LARGE.
 */
export function getRange(
  view: KvView,
  start: Uint8Array,
  end: Uint8Array | null,
  options: GetRangeOptions,
  opts: TableOptions,
  now: number,
): RangePage {
  assertNow(now);
  checkTableOptions(opts);
  checkRowKey(start);
  if (end !== null) checkRowKey(end);
  checkReadOptions(options);
  if (!(Number.isInteger(options.limit) && options.limit >= 1 && options.limit <= RANGE_ROWS_MAX)) {
    throw invalid(`limit must be an integer in 1..${RANGE_ROWS_MAX}`);
  }
  if (!(
    Number.isInteger(options.bytesMax) &&
    options.bytesMax >= 1 &&
    options.bytesMax <= RANGE_PAGE_BYTES_MAX
  )) {
    throw invalid(`bytesMax must be an integer in 1..${RANGE_PAGE_BYTES_MAX}`);
  }
  if (options.filter !== undefined) checkColumnCondition(options.filter);
  const backward = options.direction === 'backward';
  const rows: Row[] = [];
  if (options.span?.start != null) checkRowKey(options.span.start);
  if (options.span?.end != null) checkRowKey(options.span.end);
  const [lo, hi] = dataInterval(start, end, options);
  if (compareBytes(lo, hi) >= 0) return { rows, next: null };

  let bytes = 0;
  let examined = 0;
  const scanned = scanRows(view, lo, hi, backward);
  for (let step = scanned.next(); !step.done; step = scanned.next()) {
    const { rowKey, pairs } = step.value;
    if (rows.length >= options.limit || examined >= RANGE_PAGE_RECORDS_MAX) {
      return { rows, next: rowKey };
    }
    examined += pairs.length;
    const visible = visibleCells(parseRow(rowKey, pairs), opts, now);
    const filter = options.filter;
    if (
      filter !== undefined &&
      !evaluateColumnCondition(filter, (c) => visible.get(c)?.[0]?.value)
    ) {
      continue;
    }
    const row = project(rowKey, visible, options);
    if (row === null) continue;
    const size = rowBytes(row);
    if (rows.length > 0 && bytes + size > options.bytesMax) return { rows, next: rowKey };
    rows.push(row);
    bytes += size;
  }
  return { rows, next: null };
}

// ---------------------------------------------------------------------------
// Garbage collection.
// ---------------------------------------------------------------------------

/**
 * Removes the records of rows in `start <= rowKey < end` (`end` null: no
 * upper bound) that no read can return any more: versions hidden by a delete
 * marker, expired versions, versions beyond maxVersions, and delete markers
 * no longer needed (row-records.ts states the rule). Reads return the same
 * before and after, at this `now` and later.
 *
 * Works row by row and stops at the first row boundary after `budget`
 * records were examined (so one call may exceed the budget by one row's
 * records); `next` names the row to resume from.
 *
 * @throws INVALID_ARGUMENT (options, budget outside 1..{@link GC_BUDGET_RECORDS_MAX}),
 *   KEY_TOO_LARGE.
 */
export function gcRange(
  view: KvView,
  start: Uint8Array,
  end: Uint8Array | null,
  opts: TableOptions,
  now: number,
  budget: number,
): GcResult {
  assertNow(now);
  checkTableOptions(opts);
  checkRowKey(start);
  if (end !== null) checkRowKey(end);
  if (!(Number.isInteger(budget) && budget >= 1 && budget <= GC_BUDGET_RECORDS_MAX)) {
    throw invalid(`a GC budget must be an integer in 1..${GC_BUDGET_RECORDS_MAX}`);
  }
  const [lo, hi] = dataInterval(start, end, { direction: 'forward' });
  let removed = 0;
  let examined = 0;
  if (compareBytes(lo, hi) >= 0) return { removed, examined, next: null };
  for (const { rowKey, pairs } of scanRows(view, lo, hi, false)) {
    if (examined >= budget) return { removed, examined, next: rowKey };
    examined += pairs.length;
    const row = parseRow(rowKey, pairs);
    const garbage: Uint8Array[] = [];
    classifyRowMarkers(row, opts, now).forEach((v, i) => {
      if (v === 'garbage') garbage.push(row.rowMarkers[i]!.key);
    });
    const rowMarker = newestRowMarker(row);
    for (const records of row.columns.values()) {
      classifyColumn(records, rowMarker, opts, now).forEach((v, i) => {
        if (v === 'garbage') garbage.push(records[i]!.key);
      });
    }
    for (const key of garbage) view.delete(key);
    removed += garbage.length;
  }
  return { removed, examined, next: null };
}
