/**
 * The rpcs of `tessera.v1.Tables` (proto/tessera/v1/table.proto) as plain
 * async functions over a {@link TableService}: each handler turns the
 * decoded request into the JSON body the service takes (table-messages.ts),
 * calls the service, and turns its JSON answer into the response message.
 * The service (src/node/server.ts) stays the one implementation of every
 * table rule; these handlers only translate.
 *
 * Transports: gRPC (grpc-server.ts) passes its decoded request through; the
 * JSON routes derived from the proto (proto-json.ts) decode the body
 * through the proto first. Handlers throw {@link TesseraError}s for every
 * operational failure (malformed requests as INVALID_ARGUMENT naming the
 * field, and whatever the service throws) and never anything else on purpose.
 */
import { TesseraError } from '../core/errors.ts';
import type { KvResult } from '../kv/command.ts';
import type { TableService } from './http-api.ts';
import type { DecodedRequest } from './kv-proto.ts';
import type { ProtoHandler } from './proto-json.ts';
import { checkLinearizable, checkSession } from './request-checks.ts';
import type { TableMethod } from './table-proto.ts';
import {
  boolField,
  cellsToJson,
  columnConditionToJson,
  messageField,
  primaryKeyFromJson,
  primaryKeyToJson,
  readOptionsToJson,
  repeatedField,
  rowConditionToJson,
  rowErrorMessage,
  rowFromJson,
  safeIntegerField,
  schemaMessage,
  stringField,
  stringsField,
  tableNameField,
  uint32Field,
  valueFromJson,
  valueToJson,
  type Message,
} from './table-messages.ts';

function invalid(message: string): never {
  throw new TesseraError('INVALID_ARGUMENT', message);
}

/**
 * Bytes of rows a GetRange page asks for: half the gRPC response limit, so
 * that the proto framing of a full page (primary-key column names repeated
 * per row, tags per cell; at most 1000 rows) always fits the other half.
 */
const GRPC_ROW_PAGE_BYTES_MAX = 2 << 20;

/** The handlers, one per rpc of table.proto. */
export function tableHandlers(service: TableService): Readonly<Record<TableMethod, ProtoHandler>> {
  return {
    CreateTable: async (req) => {
      const table = await service.createTable(createBody(req), checkSession(req.session));
      return { table: schemaMessage(table) };
    },
    DescribeTable: async (req) => ({
      table: schemaMessage(await service.describeTable(tableNameField(req.name, 'name'))),
    }),
    ListTables: async () => ({ tables: (await service.listTables()).map(schemaMessage) }),
    AlterTable: async (req) => {
      const name = tableNameField(req.name, 'name');
      const changes: Record<string, unknown> = {};
      const maxVersions = uint32Field(req.max_versions, 'max_versions');
      if (maxVersions !== undefined) changes.maxVersions = maxVersions;
      const ttl = uint32Field(req.ttl_seconds, 'ttl_seconds');
      if (ttl !== undefined) changes.ttlSeconds = ttl === 0 ? null : ttl;
      const offset = uint32Field(req.max_version_offset_seconds, 'max_version_offset_seconds');
      if (offset !== undefined) changes.maxVersionOffsetSeconds = offset;
      const table = await service.alterTable(name, changes, checkSession(req.session));
      return { table: schemaMessage(table) };
    },
    DropTable: async (req) => {
      await service.dropTable(tableNameField(req.name, 'name'), checkSession(req.session));
      return {};
    },
    PutRow: async (req) => {
      const name = tableNameField(req.table, 'table');
      const r = await service.writeRow(name, 'put', putBody(req, ''), checkSession(req.session));
      // A put that chose an auto-increment value answers the row's whole key.
      if (r.rowKey === undefined) return {};
      return { primary_key: primaryKeyFromJson(await service.primaryKeyOf(name, r.rowKey)) };
    },
    GetRow: async (req) => {
      const name = tableNameField(req.table, 'table');
      const body = { primaryKey: primaryKeyToJson(req.primary_key, 'primary_key', false) };
      const row = await service.getRow(
        name,
        { ...body, ...readOptionsToJson(req, '') },
        checkLinearizable(req.consistency),
      );
      return row === null ? {} : { row: rowFromJson(row) };
    },
    UpdateRow: async (req) => {
      const name = tableNameField(req.table, 'table');
      const r = await service.writeRow(
        name,
        'update',
        updateBody(req, ''),
        checkSession(req.session),
      );
      return { increments: incrementCells(r) };
    },
    DeleteRow: async (req) => {
      const name = tableNameField(req.table, 'table');
      await service.writeRow(name, 'delete', deleteBody(req, ''), checkSession(req.session));
      return {};
    },
    GetRange: async (req) => {
      const name = tableNameField(req.table, 'table');
      const page = await service.scanRows(
        name,
        rangeBody(req),
        checkLinearizable(req.consistency),
        GRPC_ROW_PAGE_BYTES_MAX,
      );
      return {
        rows: page.rows.map(rowFromJson),
        ...(page.next !== null ? { next: primaryKeyFromJson(page.next) } : {}),
        ...(page.nextExclusive === true ? { next_exclusive: true } : {}),
      };
    },
    BatchGetRow: async (req) => {
      const gets = repeatedField(req.gets, 'gets').map((g, i) => {
        const at = `gets[${i}]`;
        const m = messageField(g, at) ?? {};
        return {
          table: tableNameField(m.table, `${at}.table`),
          primaryKey: primaryKeyToJson(m.primary_key, `${at}.primary_key`, false),
          ...readOptionsToJson(m, at),
        };
      });
      const results = await service.batchGetRows({ gets }, checkLinearizable(req.consistency));
      return { results: results.map(getResultMessage) };
    },
    BatchWriteRow: async (req) => {
      const writes = repeatedField(req.writes, 'writes').map((w, i) =>
        batchWrite(w, `writes[${i}]`),
      );
      const atomic = boolField(req.atomic, 'atomic');
      const results = await service.batchWriteRows({ writes, atomic }, checkSession(req.session));
      return { results: results.map(writeResultMessage) };
    },
  };
}

/** The JSON schema of a CreateTableRequest; the service validates it (INVALID_SCHEMA). */
function createBody(req: DecodedRequest): Record<string, unknown> {
  const primaryKey = repeatedField(req.primary_key, 'primary_key').map((c, i) => {
    const at = `primary_key[${i}]`;
    const m = messageField(c, at) ?? {};
    const type = m.type;
    if (type !== 'STRING' && type !== 'INTEGER' && type !== 'BINARY') {
      throw new TesseraError(
        'INVALID_SCHEMA',
        `invalid table schema: ${at}.type must be one of STRING, INTEGER, BINARY`,
      );
    }
    return {
      name: stringField(m.name, `${at}.name`),
      type: type.toLowerCase(),
      ...(boolField(m.auto_increment, `${at}.auto_increment`) ? { autoIncrement: true } : {}),
    };
  });
  const out: Record<string, unknown> = { name: stringField(req.name, 'name'), primaryKey };
  const maxVersions = uint32Field(req.max_versions, 'max_versions');
  if (maxVersions !== undefined) out.maxVersions = maxVersions;
  const ttl = uint32Field(req.ttl_seconds, 'ttl_seconds');
  if (ttl !== undefined && ttl !== 0) out.ttlSeconds = ttl;
  const offset = uint32Field(req.max_version_offset_seconds, 'max_version_offset_seconds');
  if (offset !== undefined) out.maxVersionOffsetSeconds = offset;
  return out;
}

/** The condition of a write body, when the request carries one. */
function withCondition(m: Message, prefix: string): { condition?: unknown } {
  const condition = rowConditionToJson(m.condition, `${prefix}condition`);
  return condition === undefined ? {} : { condition };
}

/** A put body `{row, condition?}`: key columns and cells in one object, as the JSON form has it. */
function putBody(m: Message, prefix: string): Record<string, unknown> {
  const pk = primaryKeyToJson(m.primary_key, `${prefix}primary_key`, false);
  const cells = cellsToJson(m.columns, `${prefix}columns`);
  for (const column of cells.keys()) {
    if (Object.hasOwn(pk, column)) {
      invalid(`${prefix}columns: "${column}" is also in ${prefix}primary_key`);
    }
  }
  return {
    row: Object.fromEntries([...Object.entries(pk), ...cells]),
    ...withCondition(m, prefix),
  };
}

/** An update body `{primaryKey, put?, delete?, deleteVersions?, increment?, condition?}`. */
function updateBody(m: Message, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    primaryKey: primaryKeyToJson(m.primary_key, `${prefix}primary_key`, false),
  };
  const put = cellsToJson(m.put, `${prefix}put`);
  if (put.size > 0) out.put = Object.fromEntries(put);
  const del = stringsField(m.delete, `${prefix}delete`);
  if (del.length > 0) out.delete = del;
  const versions = repeatedField(m.delete_versions, `${prefix}delete_versions`).map((d, i) => {
    const at = `${prefix}delete_versions[${i}]`;
    const v = messageField(d, at) ?? {};
    return {
      column: stringField(v.column, `${at}.column`),
      version: safeIntegerField(v.version, `${at}.version`, 0),
    };
  });
  if (versions.length > 0) out.deleteVersions = versions;
  const increments = new Map<string, unknown>();
  repeatedField(m.increment, `${prefix}increment`).forEach((x, i) => {
    const at = `${prefix}increment[${i}]`;
    const v = messageField(x, at) ?? {};
    const column = stringField(v.column, `${at}.column`);
    if (column === '') invalid(`${at}.column must not be empty`);
    if (increments.has(column)) invalid(`${at}.column: column "${column}" appears twice`);
    const delta = v.delta === undefined || v.delta === null ? '0' : v.delta;
    increments.set(column, valueToJson({ integer_value: delta }, `${at}.delta`));
  });
  if (increments.size > 0) out.increment = Object.fromEntries(increments);
  return { ...out, ...withCondition(m, prefix) };
}

/** A delete body `{primaryKey, condition?}`. */
function deleteBody(m: Message, prefix: string): Record<string, unknown> {
  return {
    primaryKey: primaryKeyToJson(m.primary_key, `${prefix}primary_key`, false),
    ...withCondition(m, prefix),
  };
}

const DIRECTIONS: Readonly<Record<string, string>> = { FORWARD: 'forward', BACKWARD: 'backward' };

/** A scan body `{start?, end?, direction, limit?, columns?, maxVersions?, timeRange?, at?, filter?}`. */
function rangeBody(req: DecodedRequest): Record<string, unknown> {
  const direction = DIRECTIONS[typeof req.direction === 'string' ? req.direction : 'FORWARD'];
  if (req.direction !== undefined && req.direction !== null && direction === undefined) {
    invalid('direction must be FORWARD or BACKWARD');
  }
  const out: Record<string, unknown> = { direction: direction ?? 'forward' };
  // An empty bound is no bound: the table's edge in the direction of the read.
  const start = primaryKeyToJson(req.start, 'start', true);
  if (Object.keys(start).length > 0) out.start = start;
  const end = primaryKeyToJson(req.end, 'end', true);
  if (Object.keys(end).length > 0) out.end = end;
  const limit = uint32Field(req.limit, 'limit');
  if (limit !== undefined) out.limit = limit;
  if (boolField(req.start_exclusive, 'start_exclusive') === true) out.startExclusive = true;
  if (req.filter !== undefined && req.filter !== null) {
    out.filter = columnConditionToJson(req.filter, 'filter');
  }
  return { ...out, ...readOptionsToJson(req, '') };
}

const WRITE_KINDS = ['put', 'update', 'delete'] as const;

/** One `RowWrite` of a batch as the service's `{table, kind, ...body}`. */
function batchWrite(w: unknown, field: string): Record<string, unknown> {
  const m = messageField(w, field) ?? {};
  const set = WRITE_KINDS.filter((k) => m[k] !== undefined && m[k] !== null);
  if (set.length !== 1) {
    invalid(`${field} must set exactly one of put, update, delete`);
  }
  const kind = set[0]!;
  const prefix = `${field}.${kind}.`;
  const body = messageField(m[kind], `${field}.${kind}`)!;
  if (body.session !== undefined && body.session !== null) {
    invalid(`${prefix}session: a batch has one session, BatchWriteRowRequest.session`);
  }
  const table = tableNameField(body.table, `${prefix}table`);
  const json =
    kind === 'put'
      ? putBody(body, prefix)
      : kind === 'update'
        ? updateBody(body, prefix)
        : deleteBody(body, prefix);
  return { table, kind, ...json };
}

/** The increments of an update's result as `Cell`s with their versions. */
function incrementCells(r: KvResult): Record<string, unknown>[] {
  return (r.increments ?? []).map((c) => ({
    column: c.column,
    value: valueFromJson(c.value),
    version: String(c.version),
  }));
}

/** One batch read's result (`{row}` or `{error}`) as a `RowGetResult`. */
function getResultMessage(r: unknown): Record<string, unknown> {
  const o = r as {
    row?: Record<string, unknown> | null;
    error?: { code: string; message: string };
  };
  if (o.error !== undefined) return { error: rowErrorMessage(o.error) };
  return o.row === null || o.row === undefined ? {} : { row: rowFromJson(o.row) };
}

/** One batch write's result (`{ok, increments?}` or `{error}`) as a `RowWriteResult`. */
function writeResultMessage(r: unknown): Record<string, unknown> {
  const o = r as {
    increments?: Record<string, unknown>;
    error?: { code: string; message: string };
  };
  if (o.error !== undefined) return { error: rowErrorMessage(o.error) };
  const increments = Object.entries(o.increments ?? {}).map(([column, value]) => ({
    column,
    value: valueFromJson(value),
  }));
  return increments.length > 0 ? { increments } : {};
}
