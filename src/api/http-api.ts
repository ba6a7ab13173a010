/**
 * The JSON/HTTP API of a node (fastify). Two families of routes over the
 * same handlers (kv-handlers.ts), which do all validation:
 *
 * The rpcs of kv.proto as JSON, generated from the loaded service
 * definition (proto-json.ts): `POST /tessera.v1.KV/<Rpc>` with the request
 * message as a JSON body, answered with the response message as JSON; for a
 * node that serves tables, `POST /tessera.v1.Tables/<Rpc>` the same way
 * (table.proto, table-handlers.ts) next to the table routes under /v1/tables.
 *
 * The REST routes, mapped by hand onto the handlers:
 *
 *   PUT    /v1/kv/:key        {"value": string}            -> {"key","ok":true}
 *   GET    /v1/kv/:key[?consistency=serializable]          -> {"key","value": string|null}
 *   DELETE /v1/kv/:key                                     -> {"key","ok":true}
 *   POST   /v1/kv/:key/cas    {"expect": s|null, "value": s|null} -> {"key","swapped": bool}
 *   GET    /v1/kv[?start,end,limit,consistency]            -> {"pairs","next": s|null}
 *   GET    /v1/status                                      -> NodeStatus
 *
 * and the routes that have no rpc yet: /v1/ranges, /v1/members[/:id],
 * POST /v1/ranges/:id/replicas and /metrics.
 *
 * Reads are linearizable by default (ReadIndex, thesis §6.4); serializable
 * reads answer from the local state machine and may be stale. Writes may
 * carry an exactly-once session in `x-tessera-client` / `x-tessera-seq`
 * (both or neither); without one, the write is applied without exactly-once
 * bookkeeping (a retry of it may apply twice).
 *
 * Every error is `{"code","message","retryable","leaderHint"?: {"id","http"}}`
 * with the registry's HTTP status (core/errors.ts). Malformed requests of
 * any kind get a coded 4xx; nothing a client sends can crash the process.
 */
import fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { TesseraError, isTesseraError } from '../core/errors.ts';
import type { NodeId, RangeId } from '../core/ids.ts';
import { nodeId, rangeId } from '../core/ids.ts';
import type { MemberRecord, RangeDescriptor } from '../server/meta.ts';
import type { TableSchema } from '../table/schema.ts';
import type { KvCommand, KvResult } from '../kv/command.ts';
import type { NodeMetrics } from '../node/metrics.ts';
import type { KvPage } from '../kv/state-machine.ts';
import { kvHandlers } from './kv-handlers.ts';
import { loadKvProto } from './kv-proto.ts';
import { BODY_BYTES_MAX, KEY_BYTES_MAX, SCAN_PAGE_BYTES_MAX } from './limits.ts';
import { protoJsonRoutes } from './proto-json.ts';
import { tableHandlers } from './table-handlers.ts';
import { loadTableProto } from './table-proto.ts';

export {
  BODY_BYTES_MAX,
  KEY_BYTES_MAX,
  SCAN_LIMIT_DEFAULT,
  SCAN_LIMIT_MAX,
  SCAN_PAGE_BYTES_MAX,
  VALUE_BYTES_MAX,
} from './limits.ts';
/** Largest URL path parameter, in characters (a maximal key, percent-encoded). */
const PARAM_CHARS_MAX = 3 * KEY_BYTES_MAX + 64;

/** A write as the API accepts it; the server adds the session and the proposal time. */
export type WriteOp = Omit<KvCommand, 'client' | 'seq' | 'at'>;

/** One hosted range as this node sees it. */
export interface RangeStatus {
  readonly id: RangeId;
  /** The meta range holds the cluster's own records; data ranges hold user keys. */
  readonly kind: 'meta' | 'data';
  /** First key of the span; the meta range's span is empty ("" to ""). */
  readonly start: string;
  /** End of the span (exclusive); null = to the end of the key space. */
  readonly end: string | null;
  /** This replica's role. */
  readonly role: string;
  /** The range is idle and quiet: no heartbeats, no election timer (see docs/raft.md). */
  readonly quiet: boolean;
  /** The leader this replica believes in; 0 if none. */
  readonly leader: NodeId;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** What `GET /v1/status` returns. */
export interface NodeStatus {
  readonly id: NodeId;
  readonly pid: number;
  /** role, term, leader, commit, applied and lastIndex: of this node's meta range replica. */
  readonly role: string;
  readonly term: number;
  /** The meta range's leader this node believes in; 0 if none. */
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** The members recorded in the meta range. */
  readonly members: readonly { id: NodeId; raft: string; http: string; grpcPort?: number }[];
  /** Every range this node hosts. */
  readonly ranges: readonly RangeStatus[];
}

/** A data range and where its leader is, as `GET /v1/ranges` lists them. */
export interface RangeInfo extends RangeDescriptor {
  /** The leader this node believes in; 0 if none. */
  readonly leader: NodeId;
  /** Its HTTP address, or null if unknown. */
  readonly leaderHttp: string | null;
}

/** A change of one range's replica set, proposed at its leader. */
export type ReplicaChange = 'add-learner' | 'promote' | 'remove';

/** The node as the HTTP API sees it. Failures are thrown as {@link TesseraError}s. */
export interface KvService {
  /**
   * Proposes a write and resolves once it is applied. Throws NOT_LEADER
   * (with `details.leaderHint`), RESOURCE_EXHAUSTED, PROPOSAL_DROPPED
   * (definitely not applied) or OUTCOME_UNKNOWN (deadline passed; may apply).
   */
  write(op: WriteOp, session: { client: number; seq: number } | null): Promise<KvResult>;
  /** Reads a key: linearizable (ReadIndex; may throw NOT_LEADER or TIMEOUT) or local. */
  read(key: string, linearizable: boolean): Promise<string | null>;
  /** One page of keys in [start, end) in byte order; consistency as for {@link read}. */
  scan(
    start: string,
    end: string | null,
    limit: number,
    bytesMax: number,
    linearizable: boolean,
  ): Promise<KvPage>;
  /** This node's view of itself and its ranges. */
  status(): NodeStatus;
  /** The data ranges (from the meta range) and their leaders as this node sees them. */
  ranges(): RangeInfo[];
  /** Records (adds or updates) a member in the meta range. Meta-range leader only (NOT_LEADER). */
  putMember(m: MemberRecord, session: { client: number; seq: number } | null): Promise<void>;
  /** Removes a member's record from the meta range. Meta-range leader only. */
  deleteMember(id: NodeId, session: { client: number; seq: number } | null): Promise<void>;
  /**
   * Changes one range's replica set at its leader (NOT_LEADER elsewhere) and
   * resolves once the change is applied. Idempotent: resolves false when
   * the range already has the change. `promote` of a learner that has not
   * caught up throws UNAVAILABLE (retry later).
   */
  changeReplicas(range: RangeId, change: ReplicaChange, node: NodeId): Promise<boolean>;
  /** The `host:port` of a member's HTTP API, or null if unknown. */
  httpAddressOf(id: NodeId): string | null;
}

/** The tables of the node (docs/api.md, "Tables"). Failures are thrown as {@link TesseraError}s. */
export interface TableService {
  /** Creates a table (INVALID_SCHEMA, ALREADY_EXISTS). */
  createTable(
    schema: unknown,
    session: { client: number; seq: number } | null,
  ): Promise<TableSchema>;
  /** Every table, by name (a linearizable read of the meta range). */
  listTables(): Promise<TableSchema[]>;
  /** One table's schema (NOT_FOUND). */
  describeTable(name: string): Promise<TableSchema>;
  /** Changes a table's options (NOT_FOUND, INVALID_SCHEMA, CONDITION_FAILED if it changed meanwhile). */
  alterTable(
    name: string,
    changes: unknown,
    session: { client: number; seq: number } | null,
  ): Promise<TableSchema>;
  /** Drops a table (NOT_FOUND). */
  dropTable(name: string, session: { client: number; seq: number } | null): Promise<void>;
  /** A row write (put, update or delete body); CONDITION_FAILED and friends as errors. */
  writeRow(
    name: string,
    kind: 'put' | 'update' | 'delete',
    body: unknown,
    session: { client: number; seq: number } | null,
  ): Promise<KvResult>;
  /** A row read (get body): the row's JSON, or null. */
  getRow(
    name: string,
    body: unknown,
    linearizable: boolean,
  ): Promise<Record<string, unknown> | null>;
  /**
   * Several row writes (`{writes: [{table, kind, ...}], atomic?}`): one
   * result per write, in order; atomic: all or none, rows of one range only.
   */
  batchWriteRows(
    body: unknown,
    session: { client: number; seq: number } | null,
  ): Promise<unknown[]>;
  /** Several row reads (`{gets: [{table, primaryKey, ...}]}`): one result per read, in order. */
  batchGetRows(body: unknown, linearizable: boolean): Promise<unknown[]>;
  /** The JSON primary key of an encoded row key (base64) of table `name`. */
  primaryKeyOf(name: string, rowKey: string): Promise<Record<string, unknown>>;
  /** One page of a row scan (scan body). */
  scanRows(
    name: string,
    body: unknown,
    linearizable: boolean,
    /** Bytes of rows in the page (default 4 MiB; gRPC asks less, to fit its response limit). */
    pageBytesMax?: number,
  ): Promise<{
    rows: Record<string, unknown>[];
    next: Record<string, unknown> | null;
    /** Set when the next page must leave `next` out (pass it back as `startExclusive`). */
    nextExclusive?: true;
  }>;
}

type KeyRequest = FastifyRequest<{ Params: { key: string } }>;
type TableRequest = FastifyRequest<{ Params: { table: string } }>;

/** Builds (does not start) the HTTP API over `service` (and its tables, when it has them). */
export function buildHttpApi(
  service: KvService & Partial<TableService>,
  metrics?: NodeMetrics,
  logger?: { error(obj: object, msg: string): void },
): FastifyInstance {
  // forceCloseConnections: stopping a node does not wait for idle keep-alive clients.
  const app = fastify({
    bodyLimit: BODY_BYTES_MAX,
    maxParamLength: PARAM_CHARS_MAX,
    forceCloseConnections: true,
  });
  if (metrics !== undefined) {
    app.addHook('onResponse', async (req, reply) => {
      metrics.request(req.method, req.routeOptions.url ?? 'unknown', reply.statusCode);
    });
    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  }
  app.setErrorHandler((err: FastifyError | TesseraError, req, reply) => {
    const e = toTesseraError(err);
    // A bug, not a bad request: keep the evidence (the client sees INTERNAL only).
    if (e.code === 'INTERNAL') logger?.error({ err, url: req.url }, 'HTTP handler failed');
    return reply.code(e.httpStatus).send(errorBody(e, service));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new TesseraError('NOT_FOUND', `no route ${req.method} ${req.url}`);
    return reply.code(e.httpStatus).send(errorBody(e, service));
  });
  // Not through the Status handler: REST answers NodeStatus as it is (camelCase,
  // members with their grpcPort), a shape StatusResponse does not carry.
  app.get('/v1/status', async () => service.status());
  app.get('/v1/ranges', async () => ({ ranges: service.ranges() }));
  if (isTableService(service)) registerTableRoutes(app, service);
  app.get('/v1/members', async () => ({ members: service.status().members }));
  app.put('/v1/members/:id', async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const id = memberId(req.params.id);
    const body = bodyObject(req.body);
    const grpcPort =
      body.grpcPort === undefined ? undefined : portNumber(body.grpcPort, 'grpcPort');
    const m: MemberRecord = {
      id,
      raft: hostPort(body.raft, 'raft'),
      http: hostPort(body.http, 'http'),
      ...(grpcPort !== undefined ? { grpcPort } : {}),
    };
    await service.putMember(m, session(req));
    return { member: m, ok: true };
  });
  app.delete('/v1/members/:id', async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const id = memberId(req.params.id);
    await service.deleteMember(id, session(req));
    return { id, ok: true };
  });
  app.post('/v1/ranges/:id/replicas', async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const range = rangeId(positiveInteger(req.params.id, 'range id'));
    const body = bodyObject(req.body);
    const change = body.change;
    if (change !== 'add-learner' && change !== 'promote' && change !== 'remove') {
      throw invalid('"change" must be "add-learner", "promote" or "remove"');
    }
    const node = memberId(body.node);
    const changed = await service.changeReplicas(range, change, node);
    return { range, change, node, changed };
  });
  // The rpcs of kv.proto, as JSON: one route per rpc of the loaded service.
  for (const route of protoJsonRoutes(loadKvProto(), kvHandlers(service))) {
    app.post(route.path, async (req) => route.call(req.body));
  }
  // The rpcs of table.proto, the same way.
  if (isTableService(service)) {
    for (const route of protoJsonRoutes(loadTableProto(), tableHandlers(service))) {
      app.post(route.path, async (req) => route.call(req.body));
    }
  }
  // The REST routes: thin mappings of path, query, headers and body onto
  // the same handlers, which validate; only the REST encoding is read here.
  const kv = kvHandlers(service, { scanPageBytesMax: SCAN_PAGE_BYTES_MAX });
  app.get('/v1/kv', async (req) => {
    const q = (req.query ?? {}) as Record<string, unknown>;
    const res = (await kv.Scan({
      start: q.start,
      end: q.end,
      limit: typeof q.limit === 'string' && /^[0-9]+$/.test(q.limit) ? Number(q.limit) : q.limit,
      consistency: consistencyOf(q),
    })) as { pairs: { key: string; value: string }[]; next?: string };
    return { pairs: res.pairs, next: res.next ?? null };
  });
  app.get('/v1/kv/:key', async (req: KeyRequest) => {
    const key = req.params.key;
    const res = (await kv.Get({ key, consistency: consistencyOf(req.query) })) as {
      value?: string;
    };
    return { key, value: res.value ?? null };
  });
  app.put('/v1/kv/:key', async (req: KeyRequest) => {
    const key = req.params.key;
    const body = bodyObject(req.body);
    await kv.Put({ key, value: required(body, 'value'), session: sessionOf(req) });
    return { key, ok: true };
  });
  app.delete('/v1/kv/:key', async (req: KeyRequest) => {
    const key = req.params.key;
    await kv.Delete({ key, session: sessionOf(req) });
    return { key, ok: true };
  });
  app.post('/v1/kv/:key/cas', async (req: KeyRequest) => {
    const key = req.params.key;
    const body = bodyObject(req.body);
    // REST spells "absent" as an explicit null; the proto leaves the field out.
    const expect = required(body, 'expect', true);
    const value = required(body, 'value', true);
    const res = (await kv.CompareAndSwap({ key, expect, value, session: sessionOf(req) })) as {
      swapped?: boolean;
    };
    return { key, swapped: res.swapped === true };
  });
  return app;
}

/** True if `s` serves tables: it has the {@link TableService} methods (createTable stands for them). */
export function isTableService(s: Partial<TableService>): s is TableService {
  return typeof s.createTable === 'function';
}

/** The table routes (docs/api.md, "Tables"): thin JSON mappings onto the {@link TableService}. */
function registerTableRoutes(app: FastifyInstance, tables: TableService): void {
  const name = (req: TableRequest): string => {
    const n = req.params.table;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,254}$/.test(n)) throw invalid(`bad table name "${n}"`);
    return n;
  };
  const linearizable = (req: FastifyRequest): boolean =>
    consistencyOf(req.query) === 'LINEARIZABLE';
  app.post('/v1/tables', async (req) => ({
    table: await tables.createTable(req.body, session(req)),
  }));
  app.post('/v1/tables/batch-write', async (req) => ({
    results: await tables.batchWriteRows(req.body, session(req)),
  }));
  app.post('/v1/tables/batch-get', async (req) => ({
    results: await tables.batchGetRows(req.body, linearizable(req)),
  }));
  app.get('/v1/tables', async () => ({ tables: await tables.listTables() }));
  app.get('/v1/tables/:table', async (req: TableRequest) => ({
    table: await tables.describeTable(name(req)),
  }));
  app.patch('/v1/tables/:table', async (req: TableRequest) => ({
    table: await tables.alterTable(name(req), req.body, session(req)),
  }));
  app.delete('/v1/tables/:table', async (req: TableRequest) => {
    await tables.dropTable(name(req), session(req));
    return { ok: true };
  });
  for (const kind of ['put', 'update', 'delete'] as const) {
    app.post(`/v1/tables/:table/${kind}`, async (req: TableRequest) => {
      const n = name(req);
      const r = await tables.writeRow(n, kind, req.body, session(req));
      if (kind === 'update') return { ok: true, increments: incrementsJson(r) };
      if (r.rowKey !== undefined) {
        // A put that chose an auto-increment value: the row's whole primary key.
        return { ok: true, primaryKey: await tables.primaryKeyOf(n, r.rowKey) };
      }
      return { ok: true };
    });
  }
  app.post('/v1/tables/:table/get', async (req: TableRequest) => ({
    row: await tables.getRow(name(req), req.body, linearizable(req)),
  }));
  app.post('/v1/tables/:table/scan', async (req: TableRequest) =>
    tables.scanRows(name(req), req.body, linearizable(req)),
  );
}

/** The increments of an update result as `{column: new value}`. */
function incrementsJson(r: KvResult): Record<string, unknown> {
  return Object.fromEntries((r.increments ?? []).map((c) => [c.column, c.value]));
}

/** The wire form of an error, with the range and its leader's HTTP address for NOT_LEADER. */
function errorBody(e: TesseraError, service: KvService): Record<string, unknown> {
  const body: Record<string, unknown> = {
    code: e.code,
    message: e.message,
    retryable: e.retryable,
  };
  if (typeof e.details?.range === 'number') body.range = e.details.range;
  const hint = e.details?.leaderHint;
  if (e.code === 'NOT_LEADER' && typeof hint === 'number' && hint !== 0) {
    const http = service.httpAddressOf(hint as NodeId);
    if (http !== null) body.leaderHint = { id: hint, http };
  }
  return body;
}

/** Maps fastify's own errors (bad JSON, body too large, wrong media type) to registry codes. */
function toTesseraError(err: FastifyError | TesseraError): TesseraError {
  if (isTesseraError(err)) return err;
  const status = err.statusCode ?? 500;
  if (status === 413)
    return new TesseraError('REQUEST_TOO_LARGE', err.message, { limit: BODY_BYTES_MAX });
  if (status === 404) return new TesseraError('NOT_FOUND', err.message);
  if (status >= 400 && status < 500) return new TesseraError('INVALID_ARGUMENT', err.message);
  return new TesseraError('INTERNAL', 'internal error');
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message);
}

/**
 * A body field that REST requires to be present (an empty string is a
 * value; null only where `nullable`, and then it means absent). Its type
 * and size are the handler's to check.
 */
function required(body: Record<string, unknown>, field: string, nullable = false): unknown {
  const v = body[field];
  if (v === undefined || (v === null && !nullable)) {
    throw invalid(`"${field}" must be a string${nullable ? ' or null' : ''}`);
  }
  return v;
}

function bodyObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('the body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

/** The REST `consistency` query parameter as the proto's Consistency enum name. */
function consistencyOf(query: unknown): 'LINEARIZABLE' | 'SERIALIZABLE' {
  const c = (query as Record<string, unknown> | undefined)?.consistency;
  if (c === undefined || c === 'linearizable') return 'LINEARIZABLE';
  if (c === 'serializable') return 'SERIALIZABLE';
  throw invalid('consistency must be "linearizable" or "serializable"');
}

/**
 * The proto `session` of a write from the headers `x-tessera-client` and
 * `x-tessera-seq`: absent when neither is sent; otherwise both go to the
 * handler, which refuses a missing or invalid one.
 */
function sessionOf(req: FastifyRequest): { client: unknown; seq: unknown } | undefined {
  const client = req.headers['x-tessera-client'];
  const seq = req.headers['x-tessera-seq'];
  if (client === undefined && seq === undefined) return undefined;
  return { client, seq };
}

/** The exactly-once session of a member write: both headers or neither. */
function session(req: FastifyRequest): { client: number; seq: number } | null {
  const client = req.headers['x-tessera-client'];
  const seq = req.headers['x-tessera-seq'];
  if (client === undefined && seq === undefined) return null;
  const c = positiveInteger(client, 'header x-tessera-client');
  const s = positiveInteger(seq, 'header x-tessera-seq');
  return { client: c, seq: s };
}

function positiveInteger(v: unknown, name: string): number {
  const n = typeof v === 'string' && /^[1-9][0-9]{0,15}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw invalid(`${name} must be a positive integer`);
  return n;
}

/** Largest member id. */
const MEMBER_ID_MAX = 2 ** 31 - 1;

/** A member id from a path parameter (string) or a JSON body (number). */
function memberId(v: unknown): NodeId {
  const n = typeof v === 'number' ? v : positiveInteger(v, 'member id');
  if (!Number.isInteger(n) || n < 1 || n > MEMBER_ID_MAX) {
    throw invalid(`a member id must be an integer from 1 to ${MEMBER_ID_MAX}`);
  }
  return nodeId(n);
}

/** A `host:port` address with a valid port. */
function hostPort(v: unknown, field: string): string {
  const m = typeof v === 'string' ? /^([A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/.exec(v) : null;
  if (m === null) throw invalid(`"${field}" must be HOST:PORT`);
  portNumber(Number(m[2]), field);
  return v as string;
}

function portNumber(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw invalid(`"${field}" must be a port from 1 to 65535`);
  }
  return v;
}
