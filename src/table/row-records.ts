/**
 * A row's stored records, read from a {@link KvView}, and the visibility
 * rule that both reads and garbage collection apply to them. Keeping the rule
 * in one function ({@link classifyColumn}) is what makes GC unable to change
 * what reads return: GC removes exactly the records the rule calls garbage.
 *
 * The rule, per column, over its records newest first:
 * 1. the row's newest row delete marker R and the column's newest column
 *    delete marker C hide every version <= max(R, C);
 * 2. a version older than `now - ttl` is expired;
 * 3. of the remaining versions (cells and version tombstones), the newest
 *    `maxVersions` are in the window and the rest are excess;
 * 4. the cells in the window are visible; a tombstone in the window hides
 *    nothing but holds its slot, so deleting one version never brings an
 *    excess version back.
 *
 * A delete marker older than `now - maxVersionOffset` is garbage once the
 * versions it hides are: no client version can reach below it any more (see
 * row-store.ts for why writes at or below a live marker are refused).
 */
import { TesseraError } from '../core/errors.ts';
import { decodeRecordValue } from './cell-codec.ts';
import type { DataRecordValue } from './cell-codec.ts';
import type { KvView } from './kv-view.ts';
import { decodeDataKey, rowPrefix, rowSpanEnd } from './mvcc-layout.ts';
import type { TableOptions } from './row-limits.ts';
import { expiredBeforeMs, versionOffsetMs } from './row-limits.ts';
import type { Cell, Version } from './types.ts';

/** Pairs fetched from the view per scan call. */
const SCAN_CHUNK_RECORDS = 256;

/** One stored record of a column. */
export interface ColumnRecord {
  readonly key: Uint8Array;
  readonly version: Version;
  readonly value: Exclude<DataRecordValue, { kind: 'row-delete' }>;
}

/** One stored row delete marker. */
export interface RowMarkerRecord {
  readonly key: Uint8Array;
  readonly version: Version;
}

/** Every stored data record of one row. */
export interface RowRecords {
  readonly rowKey: Uint8Array;
  /** Newest first. */
  readonly rowMarkers: readonly RowMarkerRecord[];
  /** In column key order (UTF-8 bytes); each column's records newest first. */
  readonly columns: ReadonlyMap<string, readonly ColumnRecord[]>;
  /** How many records the row has. */
  readonly recordCount: number;
}

/** The smallest key greater than `key`. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/**
 * Pairs in `[start, end)` (`end` null: unbounded), ascending or descending,
 * fetched in chunks. Each chunk is materialised before it is yielded and the
 * next one starts after its last key, so the caller may delete keys it has
 * already seen while iterating.
 */
export function* scanPairs(
  view: KvView,
  start: Uint8Array,
  end: Uint8Array | null,
  reverse: boolean,
): Generator<[Uint8Array, Uint8Array]> {
  let lo = start;
  let hi = end;
  for (;;) {
    const chunk = [...view.scan(lo, hi, { reverse, limit: SCAN_CHUNK_RECORDS })];
    yield* chunk;
    if (chunk.length < SCAN_CHUNK_RECORDS) return;
    const last = chunk[chunk.length - 1]![0];
    if (reverse) hi = last;
    else lo = successor(last);
  }
}

/** Builds a row's records from its pairs in ascending key order. */
export function parseRow(
  rowKey: Uint8Array,
  pairs: ReadonlyArray<readonly [Uint8Array, Uint8Array]>,
): RowRecords {
  const rowMarkers: RowMarkerRecord[] = [];
  const columns = new Map<string, ColumnRecord[]>();
  for (const [key, bytes] of pairs) {
    const dk = decodeDataKey(key);
    const value = decodeRecordValue(bytes);
    if (dk.kind === 'row-marker') {
      if (value.kind !== 'row-delete') throw mismatch(key);
      rowMarkers.push({ key, version: dk.version });
      continue;
    }
    if (value.kind === 'row-delete') throw mismatch(key);
    let list = columns.get(dk.column);
    if (list === undefined) columns.set(dk.column, (list = []));
    list.push({ key, version: dk.version, value });
  }
  return { rowKey, rowMarkers, columns, recordCount: pairs.length };
}

function mismatch(key: Uint8Array): TesseraError {
  return new TesseraError(
    'CORRUPTION',
    `table record kind does not match its key (${key.length}B)`,
  );
}

/** Reads every data record of one row. */
export function loadRow(view: KvView, rowKey: Uint8Array): RowRecords {
  return parseRow(rowKey, [...scanPairs(view, rowPrefix(rowKey), rowSpanEnd(rowKey), false)]);
}

/** What the visibility rule makes of one record. */
export type Verdict =
  /** A cell in the window: reads return it. */
  | 'visible'
  /** A version tombstone in the window: hides nothing, holds its slot. */
  | 'held'
  /** A delete marker still needed. */
  | 'marker'
  /** Hidden, expired, excess, or a marker no longer needed: GC removes it. */
  | 'garbage';

/** The newest row delete marker's version, or null. */
export function newestRowMarker(row: RowRecords): Version | null {
  return row.rowMarkers[0]?.version ?? null;
}

/** Verdicts of the row's delete markers, newest first (see the file header). */
export function classifyRowMarkers(row: RowRecords, opts: TableOptions, now: number): Verdict[] {
  const keepFrom = now - versionOffsetMs(opts);
  return row.rowMarkers.map((m, i) => (i === 0 && m.version >= keepFrom ? 'marker' : 'garbage'));
}

/**
 * Verdicts of one column's records (newest first), given the row's newest
 * row delete marker; see the file header for the rule.
 */
export function classifyColumn(
  records: readonly ColumnRecord[],
  rowMarker: Version | null,
  opts: TableOptions,
  now: number,
): Verdict[] {
  const expiredBefore = expiredBeforeMs(opts, now);
  const keepMarkerFrom = now - versionOffsetMs(opts);
  let hiddenUpTo = rowMarker ?? -1;
  let seenColumnMarker = false;
  let inWindow = 0;
  return records.map((r): Verdict => {
    if (r.value.kind === 'column-delete') {
      // Only the newest column marker matters, and only if the row marker does not cover it.
      const needed = !seenColumnMarker && r.version > hiddenUpTo;
      seenColumnMarker = true;
      hiddenUpTo = Math.max(hiddenUpTo, r.version);
      return needed && r.version >= keepMarkerFrom ? 'marker' : 'garbage';
    }
    if (r.version <= hiddenUpTo || r.version < expiredBefore || inWindow >= opts.maxVersions) {
      return 'garbage';
    }
    inWindow += 1;
    return r.value.kind === 'cell' ? 'visible' : 'held';
  });
}

/** The version at or below which a column's versions are hidden by a delete marker, or -1. */
export function hiddenUpTo(row: RowRecords, column: string): Version {
  const upTo = newestRowMarker(row) ?? -1;
  for (const r of row.columns.get(column) ?? []) {
    if (r.value.kind === 'column-delete') return Math.max(upTo, r.version);
  }
  return upTo;
}

/** The visible cells of every column that has one, newest first per column, in column order. */
export function visibleCells(
  row: RowRecords,
  opts: TableOptions,
  now: number,
): Map<string, Cell[]> {
  const out = new Map<string, Cell[]>();
  const rowMarker = newestRowMarker(row);
  for (const [column, records] of row.columns) {
    const verdicts = classifyColumn(records, rowMarker, opts, now);
    const cells: Cell[] = [];
    records.forEach((r, i) => {
      if (verdicts[i] === 'visible' && r.value.kind === 'cell') {
        cells.push({ column, value: r.value.value, version: r.version });
      }
    });
    if (cells.length > 0) out.set(column, cells);
  }
  return out;
}
