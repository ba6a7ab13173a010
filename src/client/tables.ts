/**
 * Tables through the client: the catalog (create, describe, list, alter,
 * drop) and a typed handle on one table's rows (put, get, update, delete,
 * scan), over the tables HTTP API (docs/api.md, "Tables").
 *
 * Values cross the wire in the JSON conventions of table/values.ts and are
 * decoded to the model's types: bigint for integers, number for doubles,
 * Uint8Array for binary, string and boolean as they are. The client does
 * not check values against a table's schema: it encodes what it is given
 * and decodes by those conventions alone (a JSON integer is always a bigint).
 *
 * Writes go through the client's exactly-once sessions (every attempt of
 * one write carries the same `x-tessera-client` / `x-tessera-seq`), so a
 * write whose outcome is unknown is retried safely; a failed condition
 * (CONDITION_FAILED) is final and never retried.
 *
 * Routing: a table's rows may span several ranges, split at partition keys
 * (table/routing.ts). Each row request names the position of its rows
 * ({@link RowPosition}); the client turns it into a routing key with the
 * table's primary-key columns (learned from its schema) and sends the
 * request to the leader of the range holding that key. The server picks
 * the range from the request itself and answers NOT_LEADER with a hint, so
 * this is only a hint: without the schema or the range map the client
 * falls back to one leader cache per table.
 */
import { ERROR_CODES, TesseraError, type ErrorCode } from '../core/errors.ts';
import { conditionToJson, type ColumnCondition, type RowCondition } from '../table/condition.ts';
import { encodeBound } from '../table/key-codec.ts';
import { partitionSplitKey, routingKeyAt } from '../table/routing.ts';
import {
  NAME_PATTERN,
  parseTableSchema,
  type PkColumnSchema,
  type TableOptions,
  type TableSchema,
} from '../table/schema.ts';
import {
  INF_MAX,
  INF_MIN,
  type AttributeValue,
  type Infinity_,
  type PkBound,
  type PkColumnType,
  type PkValue,
  type Version,
} from '../table/types.ts';
import {
  attributeFromJson,
  attributeToJson,
  pkBoundToJson,
  pkValueToJson,
  type AttributeJson,
} from '../table/values.ts';
import type { CallOptions, GetOptions } from './options.ts';

// ---- transport ----

/**
 * Where a request's rows lie in its table, in model values (bigint,
 * string, Uint8Array; INF_MIN / INF_MAX in scan bounds), for routing:
 *
 * - `row`: one row; only its partition key (first primary-key column) is
 *   used, so a put may leave an auto-increment column out;
 * - `scan`: where a scan starts (undefined: the table's first row, or its
 *   last backward); with `exclusive` backward, the scan starts strictly
 *   below `start`, in the range holding the keys just below it.
 */
export type RowPosition =
  | { readonly kind: 'row'; readonly primaryKey: Readonly<Record<string, unknown>> }
  | {
      readonly kind: 'scan';
      readonly start: Readonly<Record<string, unknown>> | undefined;
      readonly backward: boolean;
      readonly exclusive: boolean;
    };

/** One request of the tables API, as tables.ts hands it to the client. */
export interface TableRequest {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  /** The table whose rows the request touches, or null: the catalog. */
  readonly table: string | null;
  /** Where the request's rows lie in `table`: it goes to the leader of their range. */
  readonly position?: RowPosition;
  /** The range the request's rows lie in ({@link TableTransport.rangeOf}); wins over `position`. */
  readonly range?: number;
}

/**
 * How tables.ts reaches the server: the client's retry loop. `read` sends a
 * request without effect (retried freely); `write` leases an exactly-once
 * session and sends every attempt with it. Both resolve to the parsed body
 * of the first 2xx answer and fail with a {@link TesseraError}.
 */
export interface TableTransport {
  read(req: TableRequest, opts: CallOptions): Promise<unknown>;
  write(req: TableRequest, opts: CallOptions): Promise<unknown>;
  /**
   * The id of the range the client believes holds the rows at `position`
   * of `table`, or null if it cannot tell (no schema or no range map).
   */
  rangeOf(table: string, position: RowPosition, opts: CallOptions): Promise<number | null>;
  /** An answer suggests that `table` was dropped or changed: forget its cached schema. */
  forgetSchema(table: string): void;
}

// ---- limits ----

/** Rows per scan page the server allows; the default page is {@link SCAN_LIMIT_DEFAULT}. */
export const SCAN_LIMIT_MAX = 1000;
/** Rows per scan page when the caller does not say (the server's default). */
export const SCAN_LIMIT_DEFAULT = 100;
/** Pages one {@link TableHandle.scanAll} reads at most unless told otherwise. */
export const SCAN_ALL_PAGES_DEFAULT = 10_000;

// ---- types ----

/** The constraint on a row type: every column holds an attribute value. */
export type RowShape<Row> = { readonly [C in keyof Row]?: AttributeValue };
/** The row type when the caller states none: any column, any value. */
export type AnyRow = Readonly<Record<string, AttributeValue>>;
/** The column names of a row type. */
export type ColumnName<Row> = Extract<keyof Row, string>;
/** The attribute (non-key) columns of a row type. */
export type AttributeColumn<Row, Key extends ColumnName<Row>> = Exclude<ColumnName<Row>, Key>;

/**
 * A primary key: exactly the key columns when `Key` is given, else any of
 * the row's columns (the server checks that all key columns are there).
 */
export type PrimaryKeyOf<Row, Key extends ColumnName<Row>> = [Key] extends [never]
  ? { readonly [C in ColumnName<Row>]?: NonNullable<Row[C]> }
  : { readonly [C in Key]: NonNullable<Row[C]> };

/**
 * A scan bound: leading primary-key columns, each a value or INF_MIN or
 * INF_MAX. A partial bound (fewer columns than the key) stands for INF_MIN
 * in the columns it leaves out; the server checks that the columns lead the key.
 */
export type PkBoundOf<Row, Key extends ColumnName<Row>> = {
  readonly [C in keyof PrimaryKeyOf<Row, Key>]?: PrimaryKeyOf<Row, Key>[C] | Infinity_;
};

/** A cell value with the version (ms since the Unix epoch) it is written at or was read at. */
export interface Versioned<V = AttributeValue> {
  readonly value: V;
  readonly version: Version;
}

/** Attribute columns to write: a value (the server assigns the version) or a versioned value. */
export type CellsOf<Row, Key extends ColumnName<Row>> = {
  readonly [C in AttributeColumn<Row, Key>]?: NonNullable<Row[C]> | Versioned<NonNullable<Row[C]>>;
};

/**
 * A row to put: its primary-key columns and the attribute columns to write
 * (without `Key`, any column, and the server tells key from attribute).
 */
export type PutRowOf<Row, Key extends ColumnName<Row>> = [Key] extends [never]
  ? CellsOf<Row, Key>
  : PrimaryKeyOf<Row, Key> & CellsOf<Row, Key>;

/** A row as read: its primary key, and per column the versions read, newest first. */
export interface RowOf<Row, Key extends ColumnName<Row>> {
  readonly primaryKey: PrimaryKeyOf<Row, Key>;
  readonly columns: {
    readonly [C in AttributeColumn<Row, Key>]?: readonly Versioned<NonNullable<Row[C]>>[];
  };
}

/** The columns of a row type that may hold integers (increments apply only to those). */
export type IntegerColumn<Row, Key extends ColumnName<Row>> = {
  [C in AttributeColumn<Row, Key>]: bigint extends Row[C] ? C : never;
}[AttributeColumn<Row, Key>];

/** A change of one row (`POST .../update`); at least one part should be present. */
export interface RowUpdate<Row, Key extends ColumnName<Row>> {
  /** Cells to write. */
  readonly put?: CellsOf<Row, Key>;
  /** Columns to delete, every version. */
  readonly delete?: readonly AttributeColumn<Row, Key>[];
  /** Single versions to delete. */
  readonly deleteVersions?: readonly {
    readonly column: AttributeColumn<Row, Key>;
    readonly version: Version;
  }[];
  /** Integer columns to add to (a missing column counts as 0). */
  readonly increment?: {
    readonly [C in AttributeColumn<Row, Key>]?: bigint extends Row[C] ? bigint : never;
  };
}

/** The new values of the incremented columns. */
export type Increments<Row, Key extends ColumnName<Row>> = {
  readonly [C in IntegerColumn<Row, Key>]?: bigint;
};

/** Options of a row write. */
export interface WriteRowOptions extends CallOptions {
  /** The write proceeds only if it holds; else CONDITION_FAILED and nothing changes. */
  readonly condition?: RowCondition;
}

/** Options of {@link TableHandle.getRow}. */
export interface GetRowOptions<Row, Key extends ColumnName<Row>> extends GetOptions {
  /** Attribute columns to return; default all. */
  readonly columns?: readonly AttributeColumn<Row, Key>[];
  /** Versions per column to return, newest first; default 1. */
  readonly maxVersions?: number;
  /** Only versions in this range (ms since the Unix epoch), as the server defines it. */
  readonly timeRange?: { readonly start: Version; readonly end: Version };
  /** Read as of this version: only versions at or before it. */
  readonly at?: Version;
}

/** Options of {@link TableHandle.scan}. */
export interface ScanRowsOptions<Row, Key extends ColumnName<Row>> extends GetOptions {
  /**
   * Inclusive unless `startExclusive`; forward: the lower bound, backward:
   * the upper. Default: the whole table.
   */
  readonly start?: PkBoundOf<Row, Key>;
  /** Leave out rows equal to `start`: forward rows > start, backward rows < start. */
  readonly startExclusive?: boolean;
  /** Exclusive; forward: the upper bound, backward: the lower. Default: the whole table. */
  readonly end?: PkBoundOf<Row, Key>;
  /** Rows in the page, 1..{@link SCAN_LIMIT_MAX}; default {@link SCAN_LIMIT_DEFAULT}. */
  readonly limit?: number;
  readonly direction?: 'forward' | 'backward';
  /** Attribute columns to return; default all. */
  readonly columns?: readonly AttributeColumn<Row, Key>[];
  /** Versions per column to return; default 1. */
  readonly maxVersions?: number;
  /** Only rows for which it holds. */
  readonly filter?: ColumnCondition;
}

/** Options of {@link TableHandle.scanAll}. */
export interface ScanAllOptions<Row, Key extends ColumnName<Row>> extends ScanRowsOptions<
  Row,
  Key
> {
  /** Pages read at most; default {@link SCAN_ALL_PAGES_DEFAULT}. */
  readonly pagesMax?: number;
}

/**
 * One page of a scan and where the next one starts (null: the scan is
 * complete). A page covers one range's rows: at the range's edge `next` is
 * the boundary, a partial key (the partition column only).
 */
export interface RowPage<Row, Key extends ColumnName<Row>> {
  readonly rows: readonly RowOf<Row, Key>[];
  /** The `start` of the next page, or null at the end. */
  readonly next: PkBoundOf<Row, Key> | null;
  /** The next page starts strictly past `next` (its `startExclusive`); false when next is null. */
  readonly nextExclusive: boolean;
}

/** A table schema as a caller writes it: options may be left to their defaults. */
export interface TableSchemaInput {
  readonly name: string;
  readonly primaryKey: readonly {
    readonly name: string;
    readonly type: PkColumnType;
    readonly autoIncrement?: boolean;
  }[];
  readonly maxVersions?: number;
  readonly ttlSeconds?: number | null;
  readonly maxVersionOffsetSeconds?: number;
}

/** A change of a table's options; absent fields keep their value. */
export type TableChanges = Partial<TableOptions>;

/** The fields a schema change may hold. */
const OPTION_FIELDS: readonly string[] = ['maxVersions', 'ttlSeconds', 'maxVersionOffsetSeconds'];

// ---- the catalog ----

/** Table schemas: `/v1/tables`. Catalog requests go through the meta range's leader cache. */
export class TableCatalog {
  constructor(private readonly transport: TableTransport) {}

  /** See {@link TesseraClient.createTable}. */
  async create(schema: TableSchemaInput, opts: CallOptions): Promise<TableSchema> {
    const body = parseTableSchema(schema);
    const answer = await this.transport.write(
      { method: 'POST', path: '/v1/tables', body, table: null },
      opts,
    );
    // A schema read that failed before the table existed is stale now.
    this.transport.forgetSchema(body.name);
    return schemaFromAnswer(answer, 'create table');
  }

  /**
   * See {@link TesseraClient.describeTable}. `consistency: 'serializable'`
   * asks for the answering node's local copy (the client's routing takes it).
   */
  async describe(name: string, opts: GetOptions): Promise<TableSchema> {
    const query = opts.consistency === 'serializable' ? '?consistency=serializable' : '';
    const answer = await this.transport.read(
      { method: 'GET', path: tablePath(name) + query, table: null },
      opts,
    );
    return schemaFromAnswer(answer, 'describe table');
  }

  /** See {@link TesseraClient.listTables}. */
  async list(opts: CallOptions): Promise<readonly TableSchema[]> {
    const answer = await this.transport.read(
      { method: 'GET', path: '/v1/tables', table: null },
      opts,
    );
    const tables = (answer as { tables?: unknown } | null)?.tables;
    if (!Array.isArray(tables)) throw malformed('list tables');
    return tables.map((t: unknown) => schemaFrom(t, 'list tables'));
  }

  /** See {@link TesseraClient.alterTable}. */
  async alter(name: string, changes: TableChanges, opts: CallOptions): Promise<TableSchema> {
    const unknown = Object.keys(changes).filter((k) => !OPTION_FIELDS.includes(k));
    if (unknown.length > 0) {
      throw new TesseraError(
        'INVALID_SCHEMA',
        `invalid table change: only ${OPTION_FIELDS.join(', ')} may change, got ${unknown.join(', ')}`,
      );
    }
    const answer = await this.transport.write(
      { method: 'PATCH', path: tablePath(name), body: { ...changes }, table: null },
      opts,
    );
    return schemaFromAnswer(answer, 'alter table');
  }

  /** See {@link TesseraClient.dropTable}. */
  async drop(name: string, opts: CallOptions): Promise<void> {
    const answer = await this.transport.write(
      { method: 'DELETE', path: tablePath(name), table: null },
      opts,
    );
    this.transport.forgetSchema(name);
    if ((answer as { ok?: unknown } | null)?.ok !== true) throw malformed('drop table');
  }
}

// ---- rows ----

/**
 * The rows of one table, typed by what the caller states (see
 * {@link TesseraClient.table}): `Row` every column with its model type,
 * `Key` the primary-key columns. The types are the caller's promise; the
 * handle checks only that values are attribute values, and the server
 * checks them against the schema (INVALID_ARGUMENT).
 */
export class TableHandle<Row extends RowShape<Row> = AnyRow, Key extends ColumnName<Row> = never> {
  /** @throws TesseraError INVALID_ARGUMENT if `name` is not a valid table name. */
  constructor(
    readonly name: string,
    private readonly transport: TableTransport,
  ) {
    checkTableName(name);
  }

  /**
   * Writes a row (`POST .../put`): the given attribute columns get a new
   * version, other columns keep theirs. `row` must hold every primary-key
   * column. Resolves once applied.
   *
   * @throws TesseraError CONDITION_FAILED if `opts.condition` does not hold
   *   (nothing changed; not retried), INVALID_ARGUMENT, NOT_FOUND (no such table).
   */
  async putRow(row: PutRowOf<Row, Key>, opts: WriteRowOptions = {}): Promise<void> {
    const cells = row as Record<string, unknown>;
    const body = { row: cellsToJson(cells, 'row'), ...conditionOf(opts) };
    await this.writeOk('put', body, { kind: 'row', primaryKey: cells }, opts);
  }

  /**
   * Reads one row (`POST .../get`), or null if it has no visible cell.
   * Linearizable unless `opts.consistency` is `serializable`.
   */
  async getRow(
    pk: PrimaryKeyOf<Row, Key>,
    opts: GetRowOptions<Row, Key> = {},
  ): Promise<RowOf<Row, Key> | null> {
    const body: Record<string, unknown> = { primaryKey: pkToJson(pk) };
    if (opts.columns !== undefined) body.columns = [...opts.columns];
    if (opts.maxVersions !== undefined)
      body.maxVersions = positiveInt(opts.maxVersions, 'maxVersions');
    if (opts.timeRange !== undefined) {
      body.timeRange = {
        start: version(opts.timeRange.start, 'timeRange.start'),
        end: version(opts.timeRange.end, 'timeRange.end'),
      };
    }
    if (opts.at !== undefined) body.at = version(opts.at, 'at');
    const answer = await this.transport.read(
      { method: 'POST', path: this.path('get', opts), body, ...this.at(rowAt(pk)) },
      opts,
    );
    const row = (answer as { row?: unknown } | null)?.row;
    if (row === undefined) throw malformed('get row');
    return row === null ? null : (rowFromJson(row) as RowOf<Row, Key>);
  }

  /**
   * Changes one row (`POST .../update`): puts, deletes of columns or of
   * single versions, and increments of integer columns, applied together.
   * Resolves to the incremented columns' new values.
   *
   * @throws TesseraError CONDITION_FAILED as {@link putRow}.
   */
  async updateRow(
    pk: PrimaryKeyOf<Row, Key>,
    update: RowUpdate<Row, Key>,
    opts: WriteRowOptions = {},
  ): Promise<Increments<Row, Key>> {
    const body: Record<string, unknown> = { primaryKey: pkToJson(pk) };
    if (update.put !== undefined) body.put = cellsToJson(update.put, 'put');
    if (update.delete !== undefined) body.delete = [...update.delete];
    if (update.deleteVersions !== undefined) {
      body.deleteVersions = update.deleteVersions.map((d) => ({
        column: d.column,
        version: version(d.version, 'deleteVersions.version'),
      }));
    }
    if (update.increment !== undefined) {
      const inc: Record<string, AttributeJson> = {};
      for (const [col, by] of Object.entries(update.increment as Record<string, unknown>)) {
        if (by === undefined) continue;
        if (typeof by !== 'bigint') throw invalid(`increment.${col}: must be a bigint`);
        inc[col] = attributeToJson(by);
      }
      body.increment = inc;
    }
    Object.assign(body, conditionOf(opts));
    const answer = (await this.transport.write(
      { method: 'POST', path: this.path('update'), body, ...this.at(rowAt(pk)) },
      opts,
    )) as { ok?: unknown; increments?: unknown } | null;
    if (answer?.ok !== true) throw malformed('update row');
    const increments: Record<string, bigint> = {};
    if (answer.increments !== undefined) {
      if (!isPlainObject(answer.increments)) throw malformed('update row');
      for (const [col, v] of Object.entries(answer.increments)) {
        const n = decoded(v, 'update row');
        if (typeof n !== 'bigint') throw malformed('update row');
        increments[col] = n;
      }
    }
    return increments as Increments<Row, Key>;
  }

  /**
   * Deletes one row, every column and version (`POST .../delete`).
   * Deleting an absent row succeeds unless a condition says otherwise.
   */
  async deleteRow(pk: PrimaryKeyOf<Row, Key>, opts: WriteRowOptions = {}): Promise<void> {
    const body = { primaryKey: pkToJson(pk), ...conditionOf(opts) };
    await this.writeOk('delete', body, rowAt(pk), opts);
  }

  /**
   * One page of rows in primary-key order (`POST .../scan`) and where the
   * next page starts: pass `next` as `start` and `nextExclusive` as
   * `startExclusive` of the same scan to continue (null: no more rows). A
   * page holds the rows of one range at most, so it may hold fewer than
   * `limit` rows, even none, and still have a next one.
   */
  async scan(opts: ScanRowsOptions<Row, Key> = {}): Promise<RowPage<Row, Key>> {
    const body: Record<string, unknown> = {};
    if (opts.start !== undefined) body.start = boundToJson(opts.start, 'start');
    if (opts.startExclusive !== undefined && typeof opts.startExclusive !== 'boolean') {
      throw invalid('startExclusive must be a boolean');
    }
    if (opts.startExclusive === true) body.startExclusive = true;
    if (opts.end !== undefined) body.end = boundToJson(opts.end, 'end');
    if (opts.limit !== undefined) {
      const limit = positiveInt(opts.limit, 'limit');
      if (limit > SCAN_LIMIT_MAX) throw invalid(`limit must be at most ${SCAN_LIMIT_MAX}`);
      body.limit = limit;
    }
    if (opts.direction !== undefined) {
      if (opts.direction !== 'forward' && opts.direction !== 'backward') {
        throw invalid('direction must be "forward" or "backward"');
      }
      body.direction = opts.direction;
    }
    if (opts.columns !== undefined) body.columns = [...opts.columns];
    if (opts.maxVersions !== undefined)
      body.maxVersions = positiveInt(opts.maxVersions, 'maxVersions');
    if (opts.filter !== undefined) {
      body.filter = conditionToJson({ rowExistence: 'IGNORE', columnCondition: opts.filter }).if;
    }
    const position: RowPosition = {
      kind: 'scan',
      start: opts.start,
      backward: opts.direction === 'backward',
      exclusive: opts.startExclusive === true,
    };
    const answer = (await this.transport.read(
      { method: 'POST', path: this.path('scan', opts), body, ...this.at(position) },
      opts,
    )) as { rows?: unknown; next?: unknown; nextExclusive?: unknown } | null;
    if (!Array.isArray(answer?.rows)) throw malformed('scan');
    const rows = answer.rows.map((r: unknown) => rowFromJson(r) as RowOf<Row, Key>);
    if (answer.nextExclusive !== undefined && typeof answer.nextExclusive !== 'boolean') {
      throw malformed('scan');
    }
    if (answer.next === null || answer.next === undefined) {
      return { rows, next: null, nextExclusive: false };
    }
    return {
      rows,
      next: boundFromJson(answer.next, 'scan') as PkBoundOf<Row, Key>,
      nextExclusive: answer.nextExclusive === true,
    };
  }

  /**
   * Every row of a scan, page after page (each page one {@link scan}
   * call), until a page's `next` is null. Each page continues where the
   * last one ended: at its `next`, exclusive if it said so (pages end at
   * range boundaries).
   *
   * @throws TesseraError RESOURCE_EXHAUSTED after `opts.pagesMax` pages
   *   with rows left (details.next and details.nextExclusive: where to
   *   continue); INTERNAL if the server answers a `next` that does not move
   *   past the page's start.
   */
  async *scanAll(opts: ScanAllOptions<Row, Key> = {}): AsyncGenerator<RowOf<Row, Key>, void> {
    const pagesMax = positiveInt(opts.pagesMax ?? SCAN_ALL_PAGES_DEFAULT, 'pagesMax');
    const scanOpts: ScanRowsOptions<Row, Key> & { pagesMax?: number } = { ...opts };
    delete scanOpts.pagesMax;
    let start = opts.start;
    let exclusive = opts.startExclusive === true;
    for (let page = 0; page < pagesMax; page++) {
      const { rows, next, nextExclusive } = await this.scan({
        ...scanOpts,
        ...(start === undefined ? {} : { start }),
        startExclusive: exclusive,
      });
      yield* rows;
      if (next === null) return;
      if (start !== undefined && !advances(start, exclusive, next, nextExclusive)) {
        throw new TesseraError(
          'INTERNAL',
          'scan: the server answered a next that does not advance',
          { start: boundToJson(start, 'start'), startExclusive: exclusive },
        );
      }
      start = next;
      exclusive = nextExclusive;
    }
    throw new TesseraError(
      'RESOURCE_EXHAUSTED',
      `scanAll read ${pagesMax} pages and rows remain; continue with scan from details.next`,
      {
        limit: pagesMax,
        next: start === undefined ? null : boundToJson(start, 'start'),
        ...(exclusive ? { nextExclusive: true } : {}),
      },
    );
  }

  /** The routing part of a request on this table's rows at `position`. */
  private at(position: RowPosition): { table: string; position: RowPosition } {
    return { table: this.name, position };
  }

  private path(op: 'put' | 'get' | 'update' | 'delete' | 'scan', opts: GetOptions = {}): string {
    const consistency = opts.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'serializable') {
      throw invalid('consistency must be "linearizable" or "serializable"');
    }
    const query = consistency === 'serializable' ? '?consistency=serializable' : '';
    return `${tablePath(this.name)}/${op}${query}`;
  }

  private async writeOk(
    op: 'put' | 'delete',
    body: unknown,
    position: RowPosition,
    opts: CallOptions,
  ): Promise<void> {
    const answer = await this.transport.write(
      { method: 'POST', path: this.path(op), body, ...this.at(position) },
      opts,
    );
    if ((answer as { ok?: unknown } | null)?.ok !== true) throw malformed(`${op} row`);
  }
}

// ---- routing ----

/** A request on the row with primary key (or row) `pk`. */
function rowAt(pk: object): RowPosition {
  return { kind: 'row', primaryKey: pk as Readonly<Record<string, unknown>> };
}

/**
 * True for the error codes of a table request that suggest the client's
 * copy of the table's schema is stale: the table is gone (NOT_FOUND) or
 * the request did not fit it (INVALID_ARGUMENT, e.g. a table made again
 * with other key columns).
 */
export function suggestsSchemaChange(code: ErrorCode): boolean {
  return code === 'NOT_FOUND' || code === 'INVALID_ARGUMENT';
}

/** Where a request goes: the range holding `key` or, with `below`, the keys just below it. */
export interface RowsRoute {
  readonly key: string;
  readonly below: boolean;
}

/**
 * The routing key of the rows at `position` of table `table`, whose
 * primary key has `columns`, as the server routes them (table/routing.ts):
 * a row by its partition key, a scan by its start bound (the table's first
 * or last position without one) and, backward with an exclusive start, to
 * the range holding the keys just below it. Null if the position does not
 * fit the columns (the server refuses such a request; it goes anywhere).
 */
export function routeOf(
  table: string,
  columns: readonly Pick<PkColumnSchema, 'name' | 'type'>[],
  position: RowPosition,
): RowsRoute | null {
  const first = columns[0];
  if (first === undefined) return null;
  try {
    if (position.kind === 'row') {
      const value = position.primaryKey[first.name];
      if (!isPkValue(value)) return null;
      return { key: partitionSplitKey(table, first.type, value), below: false };
    }
    const bound = boundValues(columns, position.start, position.backward);
    if (bound === null) return null;
    const bytes = encodeBound(
      columns.map((c) => c.type),
      bound,
    );
    return {
      key: routingKeyAt(table, bytes),
      below: position.backward && position.exclusive,
    };
  } catch {
    return null;
  }
}

/**
 * A scan bound's values in key order, as the server reads `start`: the
 * leading key columns it names (undefined: the table's first position, or
 * its last backward); null if it names others or none.
 */
function boundValues(
  columns: readonly Pick<PkColumnSchema, 'name' | 'type'>[],
  start: Readonly<Record<string, unknown>> | undefined,
  backward: boolean,
): PkBound[] | null {
  if (start === undefined) return [backward ? INF_MAX : INF_MIN];
  const named = Object.keys(start).filter((k) => start[k] !== undefined);
  const out: PkBound[] = [];
  for (const c of columns) {
    const v = start[c.name];
    if (v === undefined) break;
    if (v !== INF_MIN && v !== INF_MAX && !isPkValue(v)) return null;
    out.push(v as PkBound);
  }
  return out.length === 0 || out.length !== named.length ? null : out;
}

function isPkValue(v: unknown): v is PkValue {
  return typeof v === 'string' || typeof v === 'bigint' || v instanceof Uint8Array;
}

// ---- JSON of rows (also used by the CLI) ----

/** The wire form of a scan bound (`start`, `end`, a page's `next`): values, or `{"$inf": ...}`. */
export function scanBoundToJson(bound: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return boundToJson(bound, 'bound');
}

// ---- batches ----

/** One write of a {@link batchWriteRows} call, on any table. */
export type BatchWriteItem =
  | {
      readonly table: string;
      readonly kind: 'put';
      readonly row: AnyRow;
      readonly condition?: RowCondition;
    }
  | {
      readonly table: string;
      readonly kind: 'update';
      readonly primaryKey: AnyRow;
      readonly update: RowUpdate<AnyRow, never>;
      readonly condition?: RowCondition;
    }
  | {
      readonly table: string;
      readonly kind: 'delete';
      readonly primaryKey: AnyRow;
      readonly condition?: RowCondition;
    };

/** One read of a {@link batchGetRows} call. */
export interface BatchGetItem {
  readonly table: string;
  readonly primaryKey: AnyRow;
  readonly columns?: readonly string[];
  readonly maxVersions?: number;
}

/** A row's outcome in a batch: done (with a write's increments, a read's row) or its error. */
export type BatchResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: TesseraError };

/** Items of one batch request at most (the server's limit). */
export const BATCH_ROWS_MAX = 200;

function batchItemJson(item: BatchWriteItem): Record<string, unknown> {
  checkTableName(item.table);
  const condition = conditionOf(item.condition === undefined ? {} : { condition: item.condition });
  switch (item.kind) {
    case 'put':
      return { table: item.table, kind: 'put', row: cellsToJson(item.row, 'row'), ...condition };
    case 'delete':
      return {
        table: item.table,
        kind: 'delete',
        primaryKey: pkToJson(item.primaryKey),
        ...condition,
      };
    case 'update': {
      const body: Record<string, unknown> = {
        table: item.table,
        kind: 'update',
        primaryKey: pkToJson(item.primaryKey),
        ...condition,
      };
      const u = item.update;
      if (u.put !== undefined) body.put = cellsToJson(u.put, 'put');
      if (u.delete !== undefined) body.delete = [...u.delete];
      if (u.increment !== undefined) {
        body.increment = Object.fromEntries(
          Object.entries(u.increment as Record<string, unknown>)
            .filter(([, by]) => by !== undefined)
            .map(([col, by]) => {
              if (typeof by !== 'bigint') throw invalid(`increment.${col}: must be a bigint`);
              return [col, attributeToJson(by)];
            }),
        );
      }
      return body;
    }
  }
}

function batchErrorOf(e: unknown): TesseraError {
  const o = e as { code?: unknown; message?: unknown };
  const code =
    typeof o?.code === 'string' && Object.hasOwn(ERROR_CODES, o.code)
      ? (o.code as ErrorCode)
      : 'INTERNAL';
  return new TesseraError(code, typeof o?.message === 'string' ? o.message : undefined);
}

/** The items of a batch that go in one request, and where that request goes. */
interface BatchGroup {
  readonly route: Pick<TableRequest, 'table' | 'position' | 'range'>;
  readonly indexes: number[];
}

/** Where a batch item's row lies: its partition key decides. */
function batchPosition(item: BatchWriteItem | BatchGetItem): RowPosition {
  const pk = 'kind' in item && item.kind === 'put' ? item.row : item.primaryKey;
  return { kind: 'row', primaryKey: pk };
}

/**
 * The items of a batch grouped by the range their rows lie in, as far as
 * the client knows (else by table), in input order within each group; one
 * group of all items, routed by the first, for an atomic batch.
 */
async function batchGroups(
  transport: TableTransport,
  items: readonly (BatchWriteItem | BatchGetItem)[],
  atomic: boolean,
  opts: CallOptions,
): Promise<BatchGroup[]> {
  const positions = items.map(batchPosition);
  if (atomic) {
    const route = { table: items[0]!.table, position: positions[0]! };
    return [{ route, indexes: items.map((_, i) => i) }];
  }
  const ranges = await Promise.all(
    items.map((it, i) => transport.rangeOf(it.table, positions[i]!, opts)),
  );
  const groups = new Map<string, BatchGroup>();
  for (const [i, it] of items.entries()) {
    const range = ranges[i]!;
    const key = range === null ? `table ${it.table}` : `range ${range}`;
    let group = groups.get(key);
    if (group === undefined) {
      const route = range === null ? { table: it.table } : { table: it.table, range };
      group = { route, indexes: [] };
      groups.set(key, group);
    }
    group.indexes.push(i);
  }
  return [...groups.values()];
}

/** The error of a batch item; one that suggests its table changed drops the cached schema. */
function batchItemError(transport: TableTransport, table: string, e: unknown): TesseraError {
  const error = batchErrorOf(e);
  if (suggestsSchemaChange(error.code)) transport.forgetSchema(table);
  return error;
}

/**
 * Several row writes, on any tables (`POST /v1/tables/batch-write`), with a
 * result per write in order. Writes are sent per range (by the partition
 * keys of their rows, when the client knows the tables' schemas and the
 * range map; else per table), each request to its range's leader with its
 * own exactly-once session. With `atomic`, all writes go in one request
 * and either all apply or none; the server refuses (INVALID_ARGUMENT)
 * writes that span ranges.
 */
export async function batchWriteRows(
  transport: TableTransport,
  items: readonly BatchWriteItem[],
  opts: CallOptions & { readonly atomic?: boolean } = {},
): Promise<BatchResult<Readonly<Record<string, bigint>>>[]> {
  if (items.length === 0 || items.length > BATCH_ROWS_MAX) {
    throw invalid(`a batch holds 1 to ${BATCH_ROWS_MAX} writes`);
  }
  const json = items.map(batchItemJson);
  const atomic = opts.atomic === true;
  const groups = await batchGroups(transport, items, atomic, opts);
  const results: BatchResult<Readonly<Record<string, bigint>>>[] = new Array(items.length);
  await Promise.all(
    groups.map(async ({ route, indexes }) => {
      const answer = (await transport.write(
        {
          method: 'POST',
          path: '/v1/tables/batch-write',
          body: { writes: indexes.map((i) => json[i]), ...(atomic ? { atomic: true } : {}) },
          ...route,
        },
        opts,
      )) as { results?: unknown } | null;
      if (!Array.isArray(answer?.results) || answer.results.length !== indexes.length) {
        throw malformed('batch write');
      }
      for (const [j, i] of indexes.entries()) {
        const r = answer.results[j] as { ok?: unknown; increments?: unknown; error?: unknown };
        if (r?.ok === true) {
          const inc: Record<string, bigint> = {};
          for (const [col, v] of Object.entries(isPlainObject(r.increments) ? r.increments : {})) {
            const n = decoded(v, 'batch write');
            if (typeof n === 'bigint') inc[col] = n;
          }
          results[i] = { ok: true, value: inc };
        } else {
          results[i] = { ok: false, error: batchItemError(transport, items[i]!.table, r?.error) };
        }
      }
    }),
  );
  return results;
}

/**
 * Several row reads, on any tables (`POST /v1/tables/batch-get`): a result
 * per read, in order. Reads are sent per range like {@link batchWriteRows}'
 * writes, each request to its range's leader.
 */
export async function batchGetRows(
  transport: TableTransport,
  gets: readonly BatchGetItem[],
  opts: GetOptions = {},
): Promise<BatchResult<RowOf<AnyRow, never> | null>[]> {
  if (gets.length === 0 || gets.length > BATCH_ROWS_MAX) {
    throw invalid(`a batch holds 1 to ${BATCH_ROWS_MAX} reads`);
  }
  const json = gets.map((g) => {
    checkTableName(g.table);
    return {
      table: g.table,
      primaryKey: pkToJson(g.primaryKey),
      ...(g.columns !== undefined ? { columns: [...g.columns] } : {}),
      ...(g.maxVersions !== undefined
        ? { maxVersions: positiveInt(g.maxVersions, 'maxVersions') }
        : {}),
    };
  });
  const query = opts.consistency === 'serializable' ? '?consistency=serializable' : '';
  const groups = await batchGroups(transport, gets, false, opts);
  const results: BatchResult<RowOf<AnyRow, never> | null>[] = new Array(gets.length);
  await Promise.all(
    groups.map(async ({ route, indexes }) => {
      const answer = (await transport.read(
        {
          method: 'POST',
          path: `/v1/tables/batch-get${query}`,
          body: { gets: indexes.map((i) => json[i]) },
          ...route,
        },
        opts,
      )) as { results?: unknown } | null;
      if (!Array.isArray(answer?.results) || answer.results.length !== indexes.length) {
        throw malformed('batch get');
      }
      for (const [j, i] of indexes.entries()) {
        const r = answer.results[j] as { row?: unknown; error?: unknown } | null;
        results[i] =
          r?.error !== undefined
            ? { ok: false, error: batchItemError(transport, gets[i]!.table, r.error) }
            : {
                ok: true,
                value: r?.row === null || r?.row === undefined ? null : rowFromJson(r.row),
              };
      }
    }),
  );
  return results;
}

/**
 * A row from its wire form `{primaryKey: {col: value}, columns: {col:
 * [{value, version}, ...]}}`, values decoded by the conventions of
 * table/values.ts.
 *
 * @throws TesseraError INTERNAL if `json` is not such a row.
 */
export function rowFromJson(json: unknown): RowOf<AnyRow, never> {
  const r = json as { primaryKey?: unknown; columns?: unknown } | null;
  if (!isPlainObject(r) || !isPlainObject(r.columns)) throw malformed('row');
  const columns: Record<string, Versioned[]> = {};
  for (const [col, cells] of Object.entries(r.columns)) {
    if (!Array.isArray(cells)) throw malformed('row');
    columns[col] = cells.map((c: unknown) => {
      const cell = c as { value?: unknown; version?: unknown } | null;
      if (!isPlainObject(cell) || typeof cell.version !== 'number') throw malformed('row');
      return { value: decoded(cell.value, 'row'), version: cell.version };
    });
  }
  return { primaryKey: pkFromJson(r.primaryKey, 'row'), columns };
}

/** The wire form of a row, the inverse of {@link rowFromJson}. */
export function rowToJson(row: RowOf<AnyRow, never>): {
  primaryKey: Record<string, AttributeJson>;
  columns: Record<string, { value: AttributeJson; version: Version }[]>;
} {
  const primaryKey: Record<string, AttributeJson> = {};
  for (const [col, v] of Object.entries(row.primaryKey)) {
    if (v !== undefined) primaryKey[col] = attributeToJson(v);
  }
  const columns: Record<string, { value: AttributeJson; version: Version }[]> = {};
  for (const [col, cells] of Object.entries(row.columns)) {
    if (cells === undefined) continue;
    columns[col] = cells.map((c) => ({ value: attributeToJson(c.value), version: c.version }));
  }
  return { primaryKey, columns };
}

// ---- helpers ----

function tablePath(name: string): string {
  checkTableName(name);
  return `/v1/tables/${encodeURIComponent(name)}`;
}

function checkTableName(name: string): void {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw invalid(
      `bad table name ${JSON.stringify(name)}: a letter or _ then up to 254 letters, digits or _`,
    );
  }
}

function conditionOf(opts: WriteRowOptions): { condition?: unknown } {
  return opts.condition === undefined ? {} : { condition: conditionToJson(opts.condition) };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isAttributeValue(v: unknown): v is AttributeValue {
  return (
    typeof v === 'string' ||
    typeof v === 'bigint' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v)) ||
    v instanceof Uint8Array
  );
}

/** Attribute cells to their wire form; undefined columns are left out. */
function cellsToJson(
  cells: Readonly<Record<string, unknown>>,
  what: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [col, v] of Object.entries(cells)) {
    if (v === undefined) continue;
    if (isAttributeValue(v)) out[col] = attributeToJson(v);
    else if (isPlainObject(v) && isAttributeValue(v.value)) {
      out[col] = {
        value: attributeToJson(v.value),
        version: version(v.version, `${what}.${col}.version`),
      };
    } else {
      throw invalid(`${what}.${col}: expected an attribute value or {value, version}`);
    }
  }
  return out;
}

function pkValue(v: unknown, what: string): PkValue {
  if (typeof v === 'string' || typeof v === 'bigint' || v instanceof Uint8Array) return v;
  throw invalid(`${what}: a primary-key value is a string, a bigint or a Uint8Array`);
}

function pkToJson(pk: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [col, v] of Object.entries(pk)) {
    if (v !== undefined) out[col] = pkValueToJson(pkValue(v, `primaryKey.${col}`));
  }
  return out;
}

function boundToJson(
  bound: Readonly<Record<string, unknown>>,
  what: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [col, v] of Object.entries(bound)) {
    if (v === undefined) continue;
    out[col] =
      v === INF_MIN || v === INF_MAX
        ? pkBoundToJson(v)
        : pkValueToJson(pkValue(v, `${what}.${col}`));
  }
  return out;
}

/** A scan bound as the server answers it (`next`): values, or `{"$inf": ...}`. */
function boundFromJson(json: unknown, what: string): Record<string, PkBound> {
  if (!isPlainObject(json)) throw malformed(what);
  const out: Record<string, PkBound> = {};
  for (const [col, v] of Object.entries(json)) {
    const inf = isPlainObject(v) ? v.$inf : undefined;
    if (inf === 'min') out[col] = INF_MIN;
    else if (inf === 'max') out[col] = INF_MAX;
    else out[col] = pkFromJson({ [col]: v }, what)[col]!;
  }
  return out;
}

/**
 * True if a scan page's continuation (`next`, `nextExclusive`) moves past
 * its start (`start`, `startExclusive`): a different bound, or the same one
 * turned from inclusive to exclusive. Bounds compare by their columns, in
 * any order (without the schema the client cannot order different bounds).
 */
function advances(
  start: Readonly<Record<string, unknown>>,
  startExclusive: boolean,
  next: Readonly<Record<string, unknown>>,
  nextExclusive: boolean,
): boolean {
  const canonical = (b: Readonly<Record<string, unknown>>): string =>
    JSON.stringify(
      Object.entries(boundToJson(b, 'bound')).sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0)),
    );
  if (canonical(start) !== canonical(next)) return true;
  return !startExclusive && nextExclusive;
}

function pkFromJson(json: unknown, what: string): Record<string, PkValue> {
  if (!isPlainObject(json)) throw malformed(what);
  const out: Record<string, PkValue> = {};
  for (const [col, v] of Object.entries(json)) {
    const value = decoded(v, what);
    if (typeof value !== 'string' && typeof value !== 'bigint' && !(value instanceof Uint8Array)) {
      throw malformed(what);
    }
    out[col] = value;
  }
  return out;
}

/** A value of the server's answer; a value that is not one is the server's fault. */
function decoded(json: unknown, what: string): AttributeValue {
  try {
    return attributeFromJson(json, what);
  } catch {
    throw malformed(what);
  }
}

function positiveInt(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw invalid(`${what} must be a positive integer`);
  return n;
}

/** A version: ms since the Unix epoch, a non-negative integer. */
function version(v: unknown, what: string): Version {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(`${what} must be a version: a non-negative integer of ms since the Unix epoch`);
  }
  return v;
}

/** A schema as the server answers it, keeping the known fields only. */
function schemaFrom(json: unknown, what: string): TableSchema {
  if (!isPlainObject(json)) throw malformed(what);
  const known: Record<string, unknown> = {};
  for (const k of ['name', 'primaryKey', ...OPTION_FIELDS]) {
    if (json[k] !== undefined) known[k] = json[k];
  }
  try {
    return parseTableSchema(known);
  } catch {
    throw malformed(what);
  }
}

function schemaFromAnswer(answer: unknown, what: string): TableSchema {
  return schemaFrom((answer as { table?: unknown } | null)?.table, what);
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message);
}

function malformed(what: string): TesseraError {
  return new TesseraError('INTERNAL', `malformed ${what} response from the server`);
}
