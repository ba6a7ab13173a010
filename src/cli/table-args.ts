/**
 * The arguments of `tessera table ...` and `tessera row ...`, parsed into
 * what the client takes. Pure (no I/O), so that tests can call them; every
 * problem is a `TesseraError('INVALID_ARGUMENT')` naming the argument, which
 * the CLI prints as `tessera: INVALID_ARGUMENT: ...`.
 *
 * JSON arguments use the wire conventions of table/values.ts: a JSON
 * integer is an integer, a fraction a double, `{"$int": "..."}`,
 * `{"$double": 1}`, `{"$binary": "<base64>"}`, and `{"$inf": "min"|"max"}`
 * in scan bounds.
 */
import { TesseraError } from '../core/errors.ts';
import {
  rowToJson,
  scanBoundToJson,
  type AnyRow,
  type RowPage,
  type RowUpdate,
  type ScanRowsOptions,
  type TableSchemaInput,
  type Versioned,
} from '../client/tables.ts';
import { parseConditionJson, type RowCondition } from '../table/condition.ts';
import {
  INF_MAX,
  INF_MIN,
  type AttributeValue,
  type PkBound,
  type PkColumnType,
  type PkValue,
} from '../table/types.ts';
import { attributeFromJson } from '../table/values.ts';

/** The column types `--pk` accepts. */
const PK_TYPES: readonly PkColumnType[] = ['string', 'integer', 'binary'];

/** The flags of `tessera table create`, as commander hands them over (strings). */
export interface CreateTableFlags {
  readonly pk?: string;
  readonly autoIncrement?: string;
  readonly maxVersions?: string;
  readonly ttl?: string;
}

/**
 * `--pk 'region:string,id:integer'` as primary-key columns, in order;
 * `autoIncrement` names a column to mark `autoIncrement: true` (the schema
 * check decides whether it may be).
 */
export function parsePkSpec(spec: string, autoIncrement?: string): TableSchemaInput['primaryKey'] {
  const columns = spec.split(',').map((part, i) => {
    const m = /^\s*([^:\s]+)\s*:\s*([a-z]+)\s*$/.exec(part);
    if (m === null) throw invalid(`--pk: column ${i + 1} "${part}" is not NAME:TYPE`);
    const type = m[2] as PkColumnType;
    if (!PK_TYPES.includes(type)) {
      throw invalid(`--pk: column ${m[1]}: type must be one of ${PK_TYPES.join(', ')}`);
    }
    return { name: m[1]!, type };
  });
  if (autoIncrement === undefined) return columns;
  if (!columns.some((c) => c.name === autoIncrement)) {
    throw invalid(`--auto-increment: ${autoIncrement} is not a --pk column`);
  }
  return columns.map((c) => (c.name === autoIncrement ? { ...c, autoIncrement: true } : c));
}

/** The schema `tessera table create NAME ...` asks for. */
export function tableSchemaFromFlags(name: string, flags: CreateTableFlags): TableSchemaInput {
  if (flags.pk === undefined) throw invalid('table create: --pk is required');
  return {
    name,
    primaryKey: parsePkSpec(flags.pk, flags.autoIncrement),
    ...(flags.maxVersions !== undefined
      ? { maxVersions: intFlag(flags.maxVersions, 'max-versions', 1) }
      : {}),
    ...(flags.ttl !== undefined ? { ttlSeconds: intFlag(flags.ttl, 'ttl', 1) } : {}),
  };
}

/** An integer flag: a whole number `>= min`. */
export function intFlag(text: string, name: string, min: number): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(n) || n < min) {
    throw invalid(`--${name} must be an integer >= ${min}, got "${text}"`);
  }
  return n;
}

/** Parses a JSON argument; `what` names it in the error. */
export function parseJsonArg(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw invalid(`${what}: not JSON (${(e as Error).message})`);
  }
}

function objectArg(json: unknown, what: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalid(`${what}: expected a JSON object`);
  }
  return json as Record<string, unknown>;
}

function cellFromJson(json: unknown, what: string): AttributeValue | Versioned {
  if (typeof json === 'object' && json !== null && !Array.isArray(json) && 'value' in json) {
    const c = json as { value: unknown; version?: unknown };
    const keys = Object.keys(c).filter((k) => k !== 'value' && k !== 'version');
    if (keys.length > 0 || typeof c.version !== 'number') {
      throw invalid(`${what}: a versioned value is {"value": ..., "version": <ms>}`);
    }
    return { value: attributeFromJson(c.value, `${what}.value`), version: c.version };
  }
  return attributeFromJson(json, what);
}

/** Columns to write, `{col: value | {"value": v, "version": ms}}`, decoded. */
export function cellsFromJson(
  json: unknown,
  what: string,
): Record<string, AttributeValue | Versioned> {
  const out: Record<string, AttributeValue | Versioned> = {};
  for (const [col, v] of Object.entries(objectArg(json, what))) {
    out[col] = cellFromJson(v, `${what}.${col}`);
  }
  return out;
}

/** A primary key `{col: value}`, decoded (string, integer or binary values). */
export function pkFromJsonArg(json: unknown, what: string): Record<string, PkValue> {
  const out: Record<string, PkValue> = {};
  for (const [col, v] of Object.entries(objectArg(json, what))) {
    const value = attributeFromJson(v, `${what}.${col}`);
    if (typeof value !== 'string' && typeof value !== 'bigint' && !(value instanceof Uint8Array)) {
      throw invalid(`${what}.${col}: a primary-key value is a string, an integer or binary`);
    }
    out[col] = value;
  }
  return out;
}

/** A scan bound: a primary key whose columns may be `{"$inf": "min"|"max"}`. */
export function boundFromJsonArg(json: unknown, what: string): Record<string, PkBound> {
  const out: Record<string, PkBound> = {};
  for (const [col, v] of Object.entries(objectArg(json, what))) {
    const inf = (v as { $inf?: unknown } | null)?.$inf;
    if (inf === 'min') out[col] = INF_MIN;
    else if (inf === 'max') out[col] = INF_MAX;
    else Object.assign(out, pkFromJsonArg({ [col]: v }, what));
  }
  return out;
}

/** The flags of `tessera row scan`, as commander hands them over. */
export interface ScanFlags {
  readonly start?: string;
  readonly startExclusive?: boolean;
  readonly end?: string;
  readonly limit?: string;
  readonly backward?: boolean;
  readonly maxVersions?: string;
  readonly serializable?: boolean;
}

/** The scan `tessera row scan TABLE ...` asks for (one page). */
export function scanFromFlags(o: ScanFlags): ScanRowsOptions<AnyRow, never> {
  return {
    ...(o.start !== undefined
      ? { start: boundFromJsonArg(parseJsonArg(o.start, '--start'), '--start') }
      : {}),
    ...(o.startExclusive === true ? { startExclusive: true } : {}),
    ...(o.end !== undefined
      ? { end: boundFromJsonArg(parseJsonArg(o.end, '--end'), '--end') }
      : {}),
    ...(o.limit !== undefined ? { limit: intFlag(o.limit, 'limit', 1) } : {}),
    ...(o.backward === true ? { direction: 'backward' as const } : {}),
    ...(o.maxVersions !== undefined
      ? { maxVersions: intFlag(o.maxVersions, 'max-versions', 1) }
      : {}),
    ...(o.serializable === true ? { consistency: 'serializable' as const } : {}),
  };
}

/**
 * What `tessera row scan` prints of a page: `{rows, next}`, and
 * `nextExclusive: true` when the next page starts strictly past `next`
 * (continue with `--start '<next>' --start-exclusive`).
 */
export function scanPageJson(page: RowPage<AnyRow, never>): Record<string, unknown> {
  return {
    rows: page.rows.map(rowToJson),
    next: page.next === null ? null : scanBoundToJson(page.next),
    ...(page.nextExclusive ? { nextExclusive: true } : {}),
  };
}

/** The row condition of `--expect exist|not-exist|ignore` and `--if '<column condition>'`. */
export function conditionFromFlags(flags: {
  readonly expect?: string;
  readonly if?: string;
}): RowCondition | undefined {
  if (flags.expect === undefined && flags.if === undefined) return undefined;
  const expects: Record<string, string> = {
    exist: 'exist',
    'not-exist': 'not_exist',
    not_exist: 'not_exist',
    ignore: 'ignore',
  };
  const json: Record<string, unknown> = {};
  if (flags.expect !== undefined) {
    const e = expects[flags.expect];
    if (e === undefined) throw invalid('--expect must be exist, not-exist or ignore');
    json.expect = e;
  }
  if (flags.if !== undefined) json.if = parseJsonArg(flags.if, '--if');
  try {
    return parseConditionJson(json);
  } catch (e) {
    if (e instanceof TesseraError) throw invalid(`condition: ${e.message}`);
    throw e;
  }
}

const UPDATE_FIELDS = ['put', 'delete', 'deleteVersions', 'increment'];

/** `{put?, delete?, deleteVersions?, increment?}` of `tessera row update`, decoded. */
export function updateFromJsonArg(json: unknown): RowUpdate<Record<string, AttributeValue>, never> {
  const o = objectArg(json, 'update');
  const unknown = Object.keys(o).filter((k) => !UPDATE_FIELDS.includes(k));
  if (unknown.length > 0) {
    throw invalid(
      `update: unknown field(s) ${unknown.join(', ')}; use ${UPDATE_FIELDS.join(', ')}`,
    );
  }
  const update: {
    put?: Record<string, AttributeValue | Versioned>;
    delete?: string[];
    deleteVersions?: { column: string; version: number }[];
    increment?: Record<string, bigint>;
  } = {};
  if (o.put !== undefined) update.put = cellsFromJson(o.put, 'update.put');
  if (o.delete !== undefined) {
    if (!Array.isArray(o.delete) || !o.delete.every((c) => typeof c === 'string')) {
      throw invalid('update.delete: expected an array of column names');
    }
    update.delete = o.delete as string[];
  }
  if (o.deleteVersions !== undefined) {
    if (!Array.isArray(o.deleteVersions)) throw invalid('update.deleteVersions: expected an array');
    update.deleteVersions = o.deleteVersions.map((d: unknown, i) => {
      const e = d as { column?: unknown; version?: unknown } | null;
      if (typeof e?.column !== 'string' || typeof e.version !== 'number') {
        throw invalid(`update.deleteVersions[${i}]: expected {"column": ..., "version": <ms>}`);
      }
      return { column: e.column, version: e.version };
    });
  }
  if (o.increment !== undefined) {
    update.increment = {};
    for (const [col, v] of Object.entries(objectArg(o.increment, 'update.increment'))) {
      const n = attributeFromJson(v, `update.increment.${col}`);
      if (typeof n !== 'bigint') throw invalid(`update.increment.${col}: expected an integer`);
      update.increment[col] = n;
    }
  }
  return update;
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message);
}
