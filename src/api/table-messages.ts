/**
 * Conversions between the messages of table.proto, as decoded with
 * KV_PROTO_LOADER_OPTIONS (int64 fields as decimal strings, enums by name,
 * bytes as Buffers, absent fields `undefined`), and the JSON forms of the
 * table API (docs/api.md "Tables", table-json.ts, src/table/values.ts).
 *
 * Requests go proto -> JSON body, so that the node's TableService stays the
 * one implementation of every rule; answers go JSON -> proto message. This
 * module checks only the shape of a message (which members are set, types
 * of fields, names unique); the values themselves are the service's to
 * check. Every malformed request is an INVALID_ARGUMENT naming the field by
 * its proto name (`primary_key[1].value`); nothing here throws anything
 * else on a request.
 */
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import { CONDITION_DEPTH_MAX } from '../table/condition.ts';
import { NAME_PATTERN, type TableSchema } from '../table/schema.ts';

/** A decoded message (fields unknown until checked). */
export type Message = Readonly<Record<string, unknown>>;

function invalid(message: string): never {
  throw new TesseraError('INVALID_ARGUMENT', message);
}

/** A message field: undefined when absent. */
export function messageField(v: unknown, field: string): Message | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v)) {
    invalid(`${field} must be a message`);
  }
  return v as Message;
}

/** A repeated field: [] when absent. */
export function repeatedField(v: unknown, field: string): readonly unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid(`${field} must be a repeated field`);
  return v;
}

/** A string field: '' when absent (proto3). */
export function stringField(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') invalid(`${field} must be a string`);
  return v;
}

/** A table name: a letter or _, then up to 254 letters, digits or _. */
export function tableNameField(v: unknown, field: string): string {
  const name = stringField(v, field);
  if (!NAME_PATTERN.test(name)) {
    invalid(`${field} must be a table name (a letter or _, then up to 254 letters, digits or _)`);
  }
  return name;
}

/** A repeated string field (column names). */
export function stringsField(v: unknown, field: string): string[] {
  return repeatedField(v, field).map((s, i) => stringField(s, `${field}[${i}]`));
}

/** An optional uint32 field: undefined when absent. */
export function uint32Field(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 32 - 1) {
    invalid(`${field} must be an unsigned 32-bit integer`);
  }
  return v;
}

/** A bool field: false when absent. */
export function boolField(v: unknown, field: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') invalid(`${field} must be true or false`);
  return v;
}

/**
 * An int64 field that the JSON forms carry as a JSON number (versions and
 * times in ms): a decimal string or a number, within ±(2^53 - 1);
 * `absent` when the field is not set.
 */
export function safeIntegerField(v: unknown, field: string, absent?: number): number | undefined {
  if (v === undefined || v === null) return absent;
  const n =
    typeof v === 'string' && /^-?[0-9]{1,16}$/.test(v)
      ? Number(v)
      : typeof v === 'number'
        ? v
        : NaN;
  if (!Number.isSafeInteger(n)) {
    invalid(`${field} must be an integer from -(2^53 - 1) to 2^53 - 1`);
  }
  return n;
}

/** The one member of a oneof that is set; INVALID_ARGUMENT for none or several. */
function oneMember<K extends string>(
  m: Message,
  members: readonly K[],
  field: string,
): { key: K; value: unknown } {
  const set = members.filter((k) => m[k] !== undefined && m[k] !== null);
  if (set.length !== 1) {
    const got = set.length === 0 ? 'none' : set.join(' and ');
    invalid(`${field} must set exactly one of ${members.join(', ')}; it sets ${got}`);
  }
  return { key: set[0]!, value: m[set[0]!] };
}

const VALUE_MEMBERS = [
  'string_value',
  'integer_value',
  'double_value',
  'boolean_value',
  'binary_value',
] as const;

/** A `Value` message as its JSON form (values.ts): the type is carried exactly. */
export function valueToJson(v: unknown, field: string): unknown {
  const m = messageField(v, field);
  if (m === undefined) invalid(`${field} is required`);
  const { key, value } = oneMember(m, VALUE_MEMBERS, field);
  const at = `${field}.${key}`;
  switch (key) {
    case 'string_value':
      return stringField(value, at);
    case 'integer_value':
      // Tagged, never a bare number: beyond 2^53 a JSON number would not be exact.
      if (typeof value === 'string' && /^-?[0-9]{1,20}$/.test(value)) return { $int: value };
      if (typeof value === 'number' && Number.isSafeInteger(value)) return { $int: String(value) };
      return invalid(`${at} must be a signed 64-bit integer`);
    case 'double_value':
      if (typeof value !== 'number') invalid(`${at} must be a number`);
      // Tagged: an integral double must stay a double.
      return { $double: value };
    case 'boolean_value':
      return boolField(value, at);
    case 'binary_value':
      if (!(value instanceof Uint8Array)) invalid(`${at} must be bytes`);
      return {
        $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'),
      };
  }
}

/**
 * Repeated `PrimaryKeyColumn`s as the JSON `{column: value}` object of a
 * primary key; with `bounds`, `inf` may stand for a value (`{"$inf": ...}`).
 * Column names must be unique. Which columns a key needs is the service's
 * to check against the schema.
 */
export function primaryKeyToJson(
  v: unknown,
  field: string,
  bounds: boolean,
): Record<string, unknown> {
  const entries = new Map<string, unknown>();
  repeatedField(v, field).forEach((c, i) => {
    const at = `${field}[${i}]`;
    const m = messageField(c, at);
    if (m === undefined) invalid(`${at} is required`);
    const name = stringField(m.name, `${at}.name`);
    if (name === '') invalid(`${at}.name must not be empty`);
    if (entries.has(name)) invalid(`${at}.name: column "${name}" appears twice`);
    const inf = m.inf;
    if (inf === undefined || inf === null) {
      entries.set(name, valueToJson(m.value, `${at}.value`));
      return;
    }
    if (!bounds) invalid(`${at}.inf: INF_MIN and INF_MAX are for GetRange bounds only`);
    if (m.value !== undefined && m.value !== null) invalid(`${at}: set value or inf, not both`);
    if (inf !== 'INF_MIN' && inf !== 'INF_MAX') invalid(`${at}.inf must be INF_MIN or INF_MAX`);
    entries.set(name, { $inf: inf === 'INF_MIN' ? 'min' : 'max' });
  });
  // fromEntries defines own properties, so a column named __proto__ stays a column.
  return Object.fromEntries(entries);
}

/**
 * Repeated `Cell`s as the JSON `{column: value | {value, version}}` object
 * of a write. A column may appear once.
 */
export function cellsToJson(v: unknown, field: string): Map<string, unknown> {
  const cells = new Map<string, unknown>();
  repeatedField(v, field).forEach((c, i) => {
    const at = `${field}[${i}]`;
    const m = messageField(c, at);
    if (m === undefined) invalid(`${at} is required`);
    const column = stringField(m.column, `${at}.column`);
    if (column === '') invalid(`${at}.column must not be empty`);
    if (cells.has(column)) invalid(`${at}.column: column "${column}" appears twice`);
    const value = valueToJson(m.value, `${at}.value`);
    const version = safeIntegerField(m.version, `${at}.version`);
    cells.set(column, version === undefined ? value : { value, version });
  });
  return cells;
}

const RELATION_OPS: Readonly<Record<string, string>> = {
  EQUAL: '=',
  NOT_EQUAL: '!=',
  GREATER_THAN: '>',
  GREATER_EQUAL: '>=',
  LESS_THAN: '<',
  LESS_EQUAL: '<=',
};

/**
 * A `ColumnCondition` as its JSON form (condition.ts). The nesting is
 * bounded here, before recursing, by CONDITION_DEPTH_MAX: a request of a
 * few MiB could otherwise nest deep enough to exhaust the stack.
 */
export function columnConditionToJson(v: unknown, field: string, depth = 1): unknown {
  if (depth > CONDITION_DEPTH_MAX) {
    invalid(`${field}: a condition nests deeper than ${CONDITION_DEPTH_MAX} levels`);
  }
  const m = messageField(v, field);
  if (m === undefined) invalid(`${field} is required`);
  const { key, value } = oneMember(m, ['relation', 'and', 'or', 'not'] as const, field);
  const at = `${field}.${key}`;
  if (key === 'not') return { not: columnConditionToJson(value, at, depth + 1) };
  const r = messageField(value, at)!;
  if (key === 'and' || key === 'or') {
    const terms = repeatedField(r.terms, `${at}.terms`);
    return {
      [key]: terms.map((t, i) => columnConditionToJson(t, `${at}.terms[${i}]`, depth + 1)),
    };
  }
  const op = typeof r.op === 'string' ? RELATION_OPS[r.op] : undefined;
  if (op === undefined) {
    invalid(`${at}.op must be one of ${Object.keys(RELATION_OPS).join(', ')}`);
  }
  const out: Record<string, unknown> = {
    column: stringField(r.column, `${at}.column`),
    op,
    value: valueToJson(r.value, `${at}.value`),
  };
  if (r.pass_if_missing !== undefined && r.pass_if_missing !== null) {
    out.passIfMissing = boolField(r.pass_if_missing, `${at}.pass_if_missing`);
  }
  return out;
}

const EXPECTATIONS: Readonly<Record<string, string>> = {
  IGNORE: 'ignore',
  EXPECT_EXIST: 'exist',
  EXPECT_NOT_EXIST: 'not_exist',
};

/** A `RowCondition` as the JSON `condition` of a write body; undefined when absent. */
export function rowConditionToJson(v: unknown, field: string): unknown {
  const m = messageField(v, field);
  if (m === undefined) return undefined;
  const expect = m.expect === undefined || m.expect === null ? 'IGNORE' : m.expect;
  const e = typeof expect === 'string' ? EXPECTATIONS[expect] : undefined;
  if (e === undefined) {
    invalid(`${field}.expect must be one of ${Object.keys(EXPECTATIONS).join(', ')}`);
  }
  if (m.if === undefined || m.if === null) return { expect: e };
  return { expect: e, if: columnConditionToJson(m.if, `${field}.if`) };
}

/** The read options of a GetRowRequest, RowGet or GetRangeRequest as JSON body fields. */
export function readOptionsToJson(m: Message, field: string): Record<string, unknown> {
  const prefix = field === '' ? '' : `${field}.`;
  const out: Record<string, unknown> = {};
  const columns = stringsField(m.columns, `${prefix}columns`);
  if (columns.length > 0) out.columns = columns;
  const maxVersions = uint32Field(m.max_versions, `${prefix}max_versions`);
  if (maxVersions !== undefined) out.maxVersions = maxVersions;
  const range = messageField(m.time_range, `${prefix}time_range`);
  if (range !== undefined) {
    out.timeRange = {
      start: safeIntegerField(range.start, `${prefix}time_range.start`, 0),
      end: safeIntegerField(range.end, `${prefix}time_range.end`, 0),
    };
  }
  const at = safeIntegerField(m.at, `${prefix}at`);
  if (at !== undefined) out.at = at;
  return out;
}

// ---- answers: JSON forms -> messages ----

/**
 * The `Value` message of a JSON value as the service answers it
 * (values.ts attributeToJson / pkValueToJson). Any other form is a bug of
 * the service, not of the request: an assertion.
 */
export function valueFromJson(json: unknown): Record<string, unknown> {
  switch (typeof json) {
    case 'string':
      return { string_value: json };
    case 'boolean':
      return { boolean_value: json };
    case 'number':
      // attributeToJson writes integral doubles as {"$double"}: a bare integer is an integer.
      return Number.isInteger(json) ? { integer_value: String(json) } : { double_value: json };
  }
  assert(typeof json === 'object' && json !== null, () => `not a JSON value: ${typeof json}`);
  const o = json as Record<string, unknown>;
  if (typeof o.$int === 'string') return { integer_value: o.$int };
  if (typeof o.$double === 'number') return { double_value: o.$double };
  assert(typeof o.$binary === 'string', () => `not a JSON value: ${JSON.stringify(json)}`);
  return { binary_value: Buffer.from(o.$binary, 'base64') };
}

/** Repeated `PrimaryKeyColumn`s of a JSON primary key, in its (the schema's) order. */
export function primaryKeyFromJson(pk: Record<string, unknown>): Record<string, unknown>[] {
  return Object.entries(pk).map(([name, v]) => ({ name, value: valueFromJson(v) }));
}

/** A `Row` message of a row as the service answers it (table-json.ts rowJson). */
export function rowFromJson(row: Record<string, unknown>): Record<string, unknown> {
  const columns = row.columns as Record<string, { value: unknown; version: number }[]>;
  return {
    primary_key: primaryKeyFromJson(row.primaryKey as Record<string, unknown>),
    columns: Object.entries(columns).map(([name, versions]) => ({
      name,
      values: versions.map((x) => ({ value: valueFromJson(x.value), version: String(x.version) })),
    })),
  };
}

/** A `TableSchema` message. */
export function schemaMessage(s: TableSchema): Record<string, unknown> {
  return {
    name: s.name,
    primary_key: s.primaryKey.map((c) => ({
      name: c.name,
      type: c.type.toUpperCase(),
      ...(c.autoIncrement === true ? { auto_increment: true } : {}),
    })),
    max_versions: s.maxVersions,
    ...(s.ttlSeconds !== null ? { ttl_seconds: s.ttlSeconds } : {}),
    max_version_offset_seconds: s.maxVersionOffsetSeconds,
  };
}

/** The error of one batch item as a `RowError`. */
export function rowErrorMessage(e: { code: string; message: string }): Record<string, unknown> {
  return { code: e.code, message: e.message };
}
