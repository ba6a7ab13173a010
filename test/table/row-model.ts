// A naive reference model of the row store (src/table/row-store.ts): plain
// maps row -> column -> version -> value, delete markers as plain lists, and
// the visibility rule written out directly. No encoding, no scans, no GC.
import { TesseraError } from '../../src/core/errors.ts';
import type { RowCondition } from '../../src/table/condition.ts';
import { checkRowCondition, evaluateColumnCondition } from '../../src/table/condition.ts';
import { compareBytes } from '../../src/table/kv-view.ts';
import type {
  CellInput,
  GetRangeOptions,
  GetRowOptions,
  Row,
  TableOptions,
  UpdateOp,
} from '../../src/table/row-store.ts';
import type { AttributeValue, Cell } from '../../src/table/types.ts';

const TOMB = Symbol('tombstone');
type ModelValue = AttributeValue | typeof TOMB;

interface ModelColumn {
  deletes: number[];
  versions: Map<number, ModelValue>;
}

interface ModelRow {
  readonly rowKey: Uint8Array;
  deletes: number[];
  columns: Map<string, ModelColumn>;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function invalid(): TesseraError {
  return new TesseraError('INVALID_ARGUMENT');
}

/** The reference model. Operations throw TesseraErrors with the store's codes. */
export class RowModel {
  private rows = new Map<string, ModelRow>();

  constructor(private readonly opts: TableOptions) {}

  private row(rowKey: Uint8Array): ModelRow {
    let r = this.rows.get(hex(rowKey));
    if (r === undefined) {
      r = { rowKey, deletes: [], columns: new Map() };
      this.rows.set(hex(rowKey), r);
    }
    return r;
  }

  private column(row: ModelRow, name: string): ModelColumn {
    let c = row.columns.get(name);
    if (c === undefined) {
      c = { deletes: [], versions: new Map() };
      row.columns.set(name, c);
    }
    return c;
  }

  private hiddenUpTo(row: ModelRow, name: string): number {
    return Math.max(-1, ...row.deletes, ...(row.columns.get(name)?.deletes ?? []));
  }

  /** Visible cells of one column, newest first. */
  private visibleColumn(row: ModelRow, name: string, now: number): Cell[] {
    const col = row.columns.get(name);
    if (col === undefined) return [];
    const covered = this.hiddenUpTo(row, name);
    const expiredBefore =
      this.opts.ttlSeconds === null ? -Infinity : now - this.opts.ttlSeconds * 1000;
    return [...col.versions.entries()]
      .filter(([v]) => v > covered && v >= expiredBefore)
      .sort((a, b) => b[0] - a[0])
      .slice(0, this.opts.maxVersions)
      .filter((e): e is [number, AttributeValue] => e[1] !== TOMB)
      .map(([version, value]) => ({ column: name, value, version }));
  }

  private visible(row: ModelRow | undefined, now: number): Map<string, Cell[]> {
    const out = new Map<string, Cell[]>();
    if (row === undefined) return out;
    const names = [...row.columns.keys()].sort((a, b) => compareBytes(utf8(a), utf8(b)));
    for (const name of names) {
      const cells = this.visibleColumn(row, name, now);
      if (cells.length > 0) out.set(name, cells);
    }
    return out;
  }

  private check(condition: RowCondition | undefined, visible: Map<string, Cell[]>): void {
    if (condition === undefined) return;
    checkRowCondition(condition, {
      exists: visible.size > 0,
      latest: (c) => visible.get(c)?.[0]?.value,
    });
  }

  private checkOffset(version: number, now: number): void {
    if (Math.abs(version - now) > this.opts.maxVersionOffsetSeconds * 1000) throw invalid();
  }

  putRow(rowKey: Uint8Array, cells: readonly CellInput[], now: number, cond?: RowCondition): void {
    const seen = new Set<string>();
    for (const c of cells) {
      if (c.version !== undefined) this.checkOffset(c.version, now);
      const id = `${c.version ?? now}/${c.column}`;
      if (seen.has(id)) throw invalid();
      seen.add(id);
    }
    this.check(cond, this.visible(this.rows.get(hex(rowKey)), now));
    const row = this.row(rowKey);
    const m = Math.min(now, ...cells.map((c) => c.version ?? now));
    row.deletes = row.deletes.filter((v) => v < m);
    for (const col of row.columns.values()) {
      col.deletes = col.deletes.filter((v) => v < m);
      for (const v of [...col.versions.keys()]) if (v >= m) col.versions.delete(v);
    }
    if (m >= 1) row.deletes.push(m - 1);
    for (const c of cells) this.column(row, c.column).versions.set(c.version ?? now, c.value);
  }

  deleteRow(rowKey: Uint8Array, now: number, cond?: RowCondition): void {
    this.check(cond, this.visible(this.rows.get(hex(rowKey)), now));
    const row = this.row(rowKey);
    row.deletes = row.deletes.filter((v) => v <= now);
    for (const col of row.columns.values()) {
      col.deletes = col.deletes.filter((v) => v <= now);
      for (const v of [...col.versions.keys()]) if (v > now) col.versions.delete(v);
    }
    row.deletes.push(now);
  }

  updateRow(
    rowKey: Uint8Array,
    ops: readonly UpdateOp[],
    now: number,
    cond?: RowCondition,
  ): Cell[] {
    const names = new Set<string>();
    for (const op of ops) {
      if (names.has(op.column)) throw invalid();
      names.add(op.column);
      if (op.type === 'put' && op.version !== undefined) this.checkOffset(op.version, now);
    }
    const existing = this.rows.get(hex(rowKey));
    const visible = this.visible(existing, now);
    this.check(cond, visible);
    const row = existing ?? { rowKey, deletes: [], columns: new Map() };
    // Decide everything first; change the model only if no op fails.
    const changes: Array<() => void> = [];
    const incremented: Cell[] = [];
    for (const op of ops) {
      const covered = this.hiddenUpTo(row, op.column);
      const defaultVersion = Math.max(now, covered + 1);
      switch (op.type) {
        case 'put': {
          if (op.version !== undefined && op.version <= covered) throw invalid();
          const version = op.version ?? defaultVersion;
          changes.push(() =>
            this.column(this.row(rowKey), op.column).versions.set(version, op.value),
          );
          break;
        }
        case 'delete-column':
          changes.push(() => {
            const col = this.column(this.row(rowKey), op.column);
            for (const v of [...col.versions.keys()]) if (v >= now) col.versions.delete(v);
            col.deletes = col.deletes.filter((v) => v <= now);
            col.deletes.push(now);
          });
          break;
        case 'delete-version':
          changes.push(() => {
            const col = row.columns.get(op.column);
            const value = col?.versions.get(op.version);
            if (col !== undefined && value !== undefined && value !== TOMB) {
              col.versions.set(op.version, TOMB);
            }
          });
          break;
        case 'increment': {
          const latest = visible.get(op.column)?.[0]?.value ?? 0n;
          if (typeof latest !== 'bigint') throw invalid();
          const sum = latest + op.delta;
          if (sum < INT64_MIN || sum > INT64_MAX) throw invalid();
          changes.push(() =>
            this.column(this.row(rowKey), op.column).versions.set(defaultVersion, sum),
          );
          incremented.push({ column: op.column, value: sum, version: defaultVersion });
          break;
        }
      }
    }
    for (const change of changes) change();
    return incremented;
  }

  getRow(rowKey: Uint8Array, options: GetRowOptions, now: number): Row | null {
    return this.project(rowKey, this.visible(this.rows.get(hex(rowKey)), now), options);
  }

  private project(rowKey: Uint8Array, visible: Map<string, Cell[]>, o: GetRowOptions): Row | null {
    const cells: Cell[] = [];
    for (const [name, versions] of visible) {
      if (o.columns !== undefined && !o.columns.includes(name)) continue;
      const picked = versions
        .filter((c) => o.at === undefined || c.version <= o.at)
        .filter((c) => o.timeRange === undefined || c.version >= o.timeRange.start)
        .filter((c) => o.timeRange === undefined || c.version < o.timeRange.end)
        .slice(0, o.maxVersions ?? 1);
      cells.push(...picked);
    }
    return cells.length === 0 ? null : { rowKey, cells };
  }

  /** Every row a whole getRange (all pages) returns. */
  getRange(start: Uint8Array, end: Uint8Array | null, o: GetRangeOptions, now: number): Row[] {
    const backward = o.direction === 'backward';
    const rows = [...this.rows.values()]
      .filter((r) =>
        backward
          ? compareBytes(r.rowKey, start) <= 0 && (end === null || compareBytes(r.rowKey, end) > 0)
          : compareBytes(r.rowKey, start) >= 0 && (end === null || compareBytes(r.rowKey, end) < 0),
      )
      .sort((a, b) => (backward ? -1 : 1) * compareBytes(a.rowKey, b.rowKey));
    const out: Row[] = [];
    for (const r of rows) {
      const visible = this.visible(r, now);
      const filter = o.filter;
      if (
        filter !== undefined &&
        !evaluateColumnCondition(filter, (c) => visible.get(c)?.[0]?.value)
      ) {
        continue;
      }
      const row = this.project(r.rowKey, visible, o);
      if (row !== null) out.push(row);
    }
    return out;
  }
}
