/**
 * The JSON forms of the table API (docs/api.md, "Tables"): request bodies
 * checked against a table's schema and turned into the table model's
 * values, and rows turned back into JSON. Values follow src/table/values.ts
 * (integers beyond 2^53 as {"$int": "..."}, {"$double": n}, {"$binary": "..."}).
 * Every malformed input is an INVALID_ARGUMENT naming the field.
 */
import { TesseraError } from '../core/errors.ts';
import type { TableWrite } from '../kv/command.ts';
import { parseConditionJson, type ColumnCondition } from '../table/condition.ts';
import {
  decodePrimaryKey,
  decodePrimaryKeyPrefix,
  encodeBound,
  encodePrimaryKey,
} from '../table/key-codec.ts';
import type { GetRowOptions, Row } from '../table/row-store.ts';
import { pkColumnTypes, type TableSchema } from '../table/schema.ts';
import { INF_MAX, INF_MIN, type PkBound, type PkValue } from '../table/types.ts';
import {
  attributeFromJson,
  attributeToJson,
  pkBoundFromJson,
  pkValueFromJson,
  pkValueToJson,
} from '../table/values.ts';

/** Rows per scan page when the request names no limit, and the most it may ask for. */
export const ROW_SCAN_LIMIT_DEFAULT = 100;
export const ROW_SCAN_LIMIT_MAX = 1000;

function invalid(message: string): never {
  throw new TesseraError('INVALID_ARGUMENT', message);
}

/** `v` as a JSON object (not an array, not null), or INVALID_ARGUMENT naming `what`. */
export function jsonObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    invalid(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** The encoded primary key (base64) of a `{col: value}` object naming every key column. */
export function primaryKeyOf(
  schema: TableSchema,
  json: unknown,
): { values: PkValue[]; rowKey: string } {
  const o = jsonObject(json, 'primaryKey');
  const values = schema.primaryKey.map((c) => {
    if (!(c.name in o)) invalid(`primaryKey: column "${c.name}" is missing`);
    return pkValueFromJson(c.type, o[c.name], `primaryKey.${c.name}`);
  });
  const extra = Object.keys(o).filter((k) => !schema.primaryKey.some((c) => c.name === k));
  if (extra.length > 0) invalid(`primaryKey: "${extra[0]}" is not a primary-key column`);
  const bytes = encodePrimaryKey(pkColumnTypes(schema), values);
  return { values, rowKey: Buffer.from(bytes).toString('base64') };
}

/** The primary key `{col: value}` of an encoded row key. */
export function primaryKeyJson(schema: TableSchema, rowKey: Uint8Array): Record<string, unknown> {
  const values = decodePrimaryKey(pkColumnTypes(schema), rowKey);
  return Object.fromEntries(schema.primaryKey.map((c, i) => [c.name, pkValueToJson(values[i]!)]));
}

/**
 * The partial primary key `{partitionColumn: value}` of a range boundary
 * inside a table (an encoded partition key, src/table/routing.ts). As a scan
 * bound it stands for the boundary itself: below every row of that partition key.
 */
export function partitionKeyJson(schema: TableSchema, bytes: Uint8Array): Record<string, unknown> {
  const first = schema.primaryKey[0]!;
  const { values, end } = decodePrimaryKeyPrefix([first.type], bytes);
  if (end !== bytes.length) invalid('a range boundary is not one partition key');
  return { [first.name]: pkValueToJson(values[0]!) };
}

/** A cell value in a write: a JSON value, or `{"value": v, "version": ms}`. */
function cellOf(column: string, json: unknown): { value: unknown; version?: number } {
  if (typeof json === 'object' && json !== null && !Array.isArray(json) && 'value' in json) {
    const o = json as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'value' && k !== 'version');
    if (extra.length > 0) invalid(`column ${column}: unexpected field "${extra[0]}"`);
    attributeFromJson(o.value, `column ${column}`);
    if (o.version === undefined) return { value: o.value };
    if (!Number.isSafeInteger(o.version) || (o.version as number) < 0) {
      invalid(`column ${column}: version must be a non-negative integer (ms)`);
    }
    return { value: o.value, version: o.version as number };
  }
  attributeFromJson(json, `column ${column}`);
  return { value: json };
}

/** The row condition of a write body, checked, in its JSON form. */
function conditionOf(body: Record<string, unknown>): { condition?: unknown } {
  if (body.condition === undefined) return {};
  parseConditionJson(body.condition);
  return { condition: body.condition };
}

type Options = TableWrite['options'];

function optionsOf(schema: TableSchema): Options {
  return {
    maxVersions: schema.maxVersions,
    ttlSeconds: schema.ttlSeconds,
    maxVersionOffsetSeconds: schema.maxVersionOffsetSeconds,
  };
}

/** A put body `{row, condition?}` as a row write. */
export function putWrite(schema: TableSchema, tableId: number, body: unknown): TableWrite {
  const b = jsonObject(body, 'the body');
  const row = jsonObject(b.row, 'row');
  const pkJson: Record<string, unknown> = {};
  const cells: { column: string; value: unknown; version?: number }[] = [];
  for (const [column, v] of Object.entries(row)) {
    if (schema.primaryKey.some((c) => c.name === column)) pkJson[column] = v;
    else cells.push({ column, ...cellOf(column, v) });
  }
  const base = {
    tableId,
    options: optionsOf(schema),
    kind: 'put' as const,
    cells,
    ...conditionOf(b),
  };
  const auto = schema.primaryKey.findIndex((c) => c.autoIncrement === true);
  if (auto < 0) return { ...base, rowKey: primaryKeyOf(schema, pkJson).rowKey };
  // The auto-increment column's value is the server's to choose.
  const autoName = schema.primaryKey[auto]!.name;
  if (autoName in pkJson) invalid(`row: "${autoName}" is an auto-increment column; leave it out`);
  const values = schema.primaryKey.map((c, i) => {
    if (i === auto) return 0n;
    if (!(c.name in pkJson)) invalid(`row: primary-key column "${c.name}" is missing`);
    return pkValueFromJson(c.type, pkJson[c.name], `row.${c.name}`);
  });
  const types = pkColumnTypes(schema);
  // Key encodings concatenate column encodings, so a key splits into parts.
  const enc = (from: number, to: number): string =>
    from === to
      ? ''
      : Buffer.from(encodePrimaryKey(types.slice(from, to), values.slice(from, to))).toString(
          'base64',
        );
  // The whole key must fit the limits with the largest counter value.
  encodePrimaryKey(
    types,
    values.map((v, i) => (i === auto ? 2n ** 63n - 1n : v)),
  );
  return {
    ...base,
    rowKey: enc(0, auto),
    autoIncrement: { partition: enc(0, 1), suffix: enc(auto + 1, types.length) },
  };
}

/** An update body `{primaryKey, put?, delete?, deleteVersions?, increment?, condition?}`. */
export function updateWrite(schema: TableSchema, tableId: number, body: unknown): TableWrite {
  const b = jsonObject(body, 'the body');
  const { rowKey } = primaryKeyOf(schema, b.primaryKey);
  const ops: NonNullable<TableWrite['ops']>[number][] = [];
  for (const [column, v] of Object.entries(b.put === undefined ? {} : jsonObject(b.put, 'put'))) {
    ops.push({ type: 'put', column, ...cellOf(column, v) });
  }
  if (b.delete !== undefined) {
    if (!Array.isArray(b.delete) || !b.delete.every((c) => typeof c === 'string')) {
      invalid('delete must be an array of column names');
    }
    for (const column of b.delete as string[]) ops.push({ type: 'delete-column', column });
  }
  if (b.deleteVersions !== undefined) {
    if (!Array.isArray(b.deleteVersions)) invalid('deleteVersions must be an array');
    for (const d of b.deleteVersions as unknown[]) {
      const o = jsonObject(d, 'deleteVersions[]');
      if (typeof o.column !== 'string' || !Number.isSafeInteger(o.version)) {
        invalid('deleteVersions[] needs {"column": name, "version": ms}');
      }
      ops.push({
        type: 'delete-version',
        column: o.column as string,
        version: o.version as number,
      });
    }
  }
  const inc = b.increment === undefined ? {} : jsonObject(b.increment, 'increment');
  for (const [column, v] of Object.entries(inc)) {
    const delta = attributeFromJson(v, `increment.${column}`);
    if (typeof delta !== 'bigint') invalid(`increment.${column} must be an integer`);
    ops.push({ type: 'increment', column, delta: delta.toString() });
  }
  if (ops.length === 0)
    invalid('an update needs at least one of put, delete, deleteVersions, increment');
  return { tableId, options: optionsOf(schema), rowKey, kind: 'update', ops, ...conditionOf(b) };
}

/** A delete body `{primaryKey, condition?}`. */
export function deleteWrite(schema: TableSchema, tableId: number, body: unknown): TableWrite {
  const b = jsonObject(body, 'the body');
  const { rowKey } = primaryKeyOf(schema, b.primaryKey);
  return { tableId, options: optionsOf(schema), rowKey, kind: 'delete', ...conditionOf(b) };
}

/** Read options of a get or scan body: columns, maxVersions, timeRange, at. */
export function readOptionsOf(b: Record<string, unknown>): GetRowOptions {
  const out: { -readonly [K in keyof GetRowOptions]: GetRowOptions[K] } = {};
  if (b.columns !== undefined) {
    if (!Array.isArray(b.columns) || !b.columns.every((c) => typeof c === 'string')) {
      invalid('columns must be an array of column names');
    }
    out.columns = b.columns as string[];
  }
  if (b.maxVersions !== undefined) {
    if (!Number.isSafeInteger(b.maxVersions)) invalid('maxVersions must be an integer');
    out.maxVersions = b.maxVersions as number;
  }
  if (b.timeRange !== undefined) {
    const t = jsonObject(b.timeRange, 'timeRange');
    if (!Number.isSafeInteger(t.start) || !Number.isSafeInteger(t.end)) {
      invalid('timeRange needs integer "start" and "end" (ms)');
    }
    out.timeRange = { start: t.start as number, end: t.end as number };
  }
  if (b.at !== undefined) {
    if (!Number.isSafeInteger(b.at)) invalid('at must be an integer (ms)');
    out.at = b.at as number;
  }
  return out;
}

/** The filter of a scan body (a column condition), if any. */
export function filterOf(b: Record<string, unknown>): ColumnCondition | undefined {
  if (b.filter === undefined) return undefined;
  const c = parseConditionJson({ if: b.filter });
  return c.columnCondition;
}

/** A scan bound: a `{col: value | {"$inf": ...}}` object naming a prefix of the key columns. */
function boundOf(schema: TableSchema, json: unknown, fallback: PkBound, what: string): PkBound[] {
  if (json === undefined) return [fallback];
  const o = jsonObject(json, what);
  const out: PkBound[] = [];
  for (const c of schema.primaryKey) {
    if (!(c.name in o)) break;
    out.push(pkBoundFromJson(c.type, o[c.name], `${what}.${c.name}`));
  }
  if (out.length !== Object.keys(o).length) {
    invalid(`${what} must name leading primary-key columns, in order, and nothing else`);
  }
  if (out.length === 0) invalid(`${what} names no primary-key column`);
  return out;
}

/**
 * The encoded row-key bounds of a scan body, as the row store takes them:
 * forward `start <= row < end`; backward `end < row <= start`; null end = no bound.
 */
export function scanBoundsOf(
  schema: TableSchema,
  b: Record<string, unknown>,
  backward: boolean,
): { start: Uint8Array; end: Uint8Array | null } {
  const types = pkColumnTypes(schema);
  const start = encodeBound(types, boundOf(schema, b.start, backward ? INF_MAX : INF_MIN, 'start'));
  const end = encodeBound(types, boundOf(schema, b.end, backward ? INF_MIN : INF_MAX, 'end'));
  // Both edges are "lower" encodings: INF_MAX adds a byte above every key
  // column tag, INF_MIN and a partial tuple add nothing (a prefix sorts first).
  return { start, end: end.length === 0 ? null : end };
}

/** A row as the API returns it. */
export function rowJson(schema: TableSchema, row: Row): Record<string, unknown> {
  const columns: Record<string, { value: unknown; version: number }[]> = {};
  for (const c of row.cells) {
    (columns[c.column] ??= []).push({ value: attributeToJson(c.value), version: c.version });
  }
  return { primaryKey: primaryKeyJson(schema, row.rowKey), columns };
}
