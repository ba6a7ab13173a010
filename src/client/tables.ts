/**
 * Tables through the client: the catalog (create, describe, list, alter,
 * drop) and a typed handle on one table's rows (put, get, update, delete,
 * scan), over the tables HTTP API (docs/api.md, "Tables").
 *
 * Values cross the wire in the JSON conventions of table/values.ts and are
 * decoded to the model's types: bigint for integers, number for doubles,
 * Uint8Array for binary, string and boolean as they are. The client does
 * not know a table's schema: it encodes what it is given and decodes by
 * those conventions alone (a JSON integer is always a bigint).
 *
 * Writes go through the client's exactly-once sessions (every attempt of
 * one write carries the same `x-tessera-client` / `x-tessera-seq`), so a
 * write whose outcome is unknown is retried safely; a failed condition
 * (CONDITION_FAILED) is final and never retried. Row requests of one table
 * share a leader cache: the server routes a table's rows to its range and
 * answers NOT_LEADER with a hint, which the client follows and keeps.
 */
import { ERROR_CODES, TesseraError, type ErrorCode } from '../core/errors.ts';
import { conditionToJson, type ColumnCondition, type RowCondition } from '../table/condition.ts';
import {
  NAME_PATTERN,
  parseTableSchema,
  type TableOptions,
  type TableSchema,
} from '../table/schema.ts';
import {
  INF_MAX,
  INF_MIN,
  type AttributeValue,
  type Infinity_,
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

/** One request of the tables API, as tables.ts hands it to the client. */
export interface TableRequest {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  /** The table whose rows the request touches (its leader cache), or null: the catalog. */
  readonly table: string | null;
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

/** A scan bound: a primary key whose columns may also be INF_MIN or INF_MAX. */
export type PkBoundOf<Row, Key extends ColumnName<Row>> = {
  readonly [C in keyof PrimaryKeyOf<Row, Key>]: PrimaryKeyOf<Row, Key>[C] | Infinity_;
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
  /** Inclusive; forward: the lower bound, backward: the upper. Default: the whole table. */
  readonly start?: PkBoundOf<Row, Key>;
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

/** One page of a scan and where the next one starts (null: the scan is complete). */
export interface RowPage<Row, Key extends ColumnName<Row>> {
  readonly rows: readonly RowOf<Row, Key>[];
  readonly next: PrimaryKeyOf<Row, Key> | null;
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
    return schemaFromAnswer(answer, 'create table');
  }

  /** See {@link TesseraClient.describeTable}. */
  async describe(name: string, opts: CallOptions): Promise<TableSchema> {
    const answer = await this.transport.read(
      { method: 'GET', path: tablePath(name), table: null },
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
    const body = { row: cellsToJson(row as Record<string, unknown>, 'row'), ...conditionOf(opts) };
    await this.writeOk('put', body, opts);
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
      { method: 'POST', path: this.path('get', opts), body, table: this.name },
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
      { method: 'POST', path: this.path('update'), body, table: this.name },
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
    await this.writeOk('delete', { primaryKey: pkToJson(pk), ...conditionOf(opts) }, opts);
  }

  /**
   * One page of rows in primary-key order (`POST .../scan`) and where the
   * next page starts: pass `next` as `start` of the same scan to continue
   * (null: no more rows). A page may hold fewer than `limit` rows and still
   * have a next one.
   */
  async scan(opts: ScanRowsOptions<Row, Key> = {}): Promise<RowPage<Row, Key>> {
    const body: Record<string, unknown> = {};
    if (opts.start !== undefined) body.start = boundToJson(opts.start, 'start');
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
    const answer = (await this.transport.read(
      { method: 'POST', path: this.path('scan', opts), body, table: this.name },
      opts,
    )) as { rows?: unknown; next?: unknown } | null;
    if (!Array.isArray(answer?.rows)) throw malformed('scan');
    const rows = answer.rows.map((r: unknown) => rowFromJson(r) as RowOf<Row, Key>);
    if (answer.next === null || answer.next === undefined) return { rows, next: null };
    return { rows, next: pkFromJson(answer.next, 'scan') as PrimaryKeyOf<Row, Key> };
  }

  /**
   * Every row of a scan, page after page (each page one {@link scan}
   * call), until a page's `next` is null.
   *
   * @throws TesseraError RESOURCE_EXHAUSTED after `opts.pagesMax` pages
   *   with rows left (details.next: where to continue); INTERNAL if the
   *   server answers a `next` that does not move past the page's start.
   */
  async *scanAll(opts: ScanAllOptions<Row, Key> = {}): AsyncGenerator<RowOf<Row, Key>, void> {
    const pagesMax = positiveInt(opts.pagesMax ?? SCAN_ALL_PAGES_DEFAULT, 'pagesMax');
    const scanOpts: ScanRowsOptions<Row, Key> & { pagesMax?: number } = { ...opts };
    delete scanOpts.pagesMax;
    let start = opts.start;
    for (let page = 0; page < pagesMax; page++) {
      const { rows, next } = await this.scan(
        start === undefined ? scanOpts : { ...scanOpts, start },
      );
      yield* rows;
      if (next === null) return;
      if (start !== undefined && sameJson(boundToJson(start, 'start'), pkToJson(next))) {
        throw new TesseraError(
          'INTERNAL',
          'scan: the server answered a next that does not advance',
        );
      }
      start = next as PkBoundOf<Row, Key>;
    }
    throw new TesseraError(
      'RESOURCE_EXHAUSTED',
      `scanAll read ${pagesMax} pages and rows remain; continue with scan from details.next`,
      { limit: pagesMax, next: start === undefined ? null : boundToJson(start, 'start') },
    );
  }

  private path(op: 'put' | 'get' | 'update' | 'delete' | 'scan', opts: GetOptions = {}): string {
    const consistency = opts.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'serializable') {
      throw invalid('consistency must be "linearizable" or "serializable"');
    }
    const query = consistency === 'serializable' ? '?consistency=serializable' : '';
    return `${tablePath(this.name)}/${op}${query}`;
  }

  private async writeOk(op: 'put' | 'delete', body: unknown, opts: CallOptions): Promise<void> {
    const answer = await this.transport.write(
      { method: 'POST', path: this.path(op), body, table: this.name },
      opts,
    );
    if ((answer as { ok?: unknown } | null)?.ok !== true) throw malformed(`${op} row`);
  }
}

// ---- JSON of rows (also used by the CLI) ----

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

/**
 * Several row writes, on any tables (`POST /v1/tables/batch-write`), with a
 * result per write in order. Writes are sent per table (a table lives in one
 * range), each request to its table's leader with its own exactly-once
 * session. With `atomic`, all writes go in one request and either all apply
 * or none; the server refuses (INVALID_ARGUMENT) writes that span ranges.
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
  const groups = new Map<string, number[]>();
  if (opts.atomic === true)
    groups.set(
      items[0]!.table,
      items.map((_, i) => i),
    );
  else
    for (const [i, it] of items.entries())
      groups.set(it.table, [...(groups.get(it.table) ?? []), i]);
  const results: BatchResult<Readonly<Record<string, bigint>>>[] = new Array(items.length);
  await Promise.all(
    [...groups].map(async ([table, indexes]) => {
      const answer = (await transport.write(
        {
          method: 'POST',
          path: '/v1/tables/batch-write',
          body: {
            writes: indexes.map((i) => json[i]),
            ...(opts.atomic === true ? { atomic: true } : {}),
          },
          table,
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
          results[i] = { ok: false, error: batchErrorOf(r?.error) };
        }
      }
    }),
  );
  return results;
}

/** Several row reads, on any tables (`POST /v1/tables/batch-get`): a result per read, in order. */
export async function batchGetRows(
  transport: TableTransport,
  gets: readonly BatchGetItem[],
  opts: GetOptions = {},
): Promise<BatchResult<RowOf<AnyRow, never> | null>[]> {
  if (gets.length === 0 || gets.length > BATCH_ROWS_MAX) {
    throw invalid(`a batch holds 1 to ${BATCH_ROWS_MAX} reads`);
  }
  const body = {
    gets: gets.map((g) => {
      checkTableName(g.table);
      return {
        table: g.table,
        primaryKey: pkToJson(g.primaryKey),
        ...(g.columns !== undefined ? { columns: [...g.columns] } : {}),
        ...(g.maxVersions !== undefined
          ? { maxVersions: positiveInt(g.maxVersions, 'maxVersions') }
          : {}),
      };
    }),
  };
  const query = opts.consistency === 'serializable' ? '?consistency=serializable' : '';
  const answer = (await transport.read(
    { method: 'POST', path: `/v1/tables/batch-get${query}`, body, table: gets[0]!.table },
    opts,
  )) as { results?: unknown } | null;
  if (!Array.isArray(answer?.results) || answer.results.length !== gets.length) {
    throw malformed('batch get');
  }
  return answer.results.map((r: { row?: unknown; error?: unknown }) =>
    r?.error !== undefined
      ? { ok: false as const, error: batchErrorOf(r.error) }
      : {
          ok: true as const,
          value: r?.row === null || r?.row === undefined ? null : rowFromJson(r.row),
        },
  );
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

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
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
