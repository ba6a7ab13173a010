/**
 * The typed client of Tessera's JSON/HTTP API (node/http-api.ts).
 *
 * Routing: each attempt goes to the cached leader if there is one, else to
 * the configured endpoints in turn; a NOT_LEADER answer's `leaderHint.http`
 * is followed and cached, a node that fails is dropped from the cache. There
 * is one such leader cache per range: a key-value request goes through the
 * cache of the range holding its key, a table row request through that of
 * the range holding its rows' routing key (tables.ts, table/routing.ts),
 * computed with the table's primary-key columns, which the client learns
 * from the table's schema and caches.
 *
 * Exactly-once writes: every write carries an exactly-once session id and
 * sequence number (`x-tessera-client` / `x-tessera-seq`, see
 * session-pool.ts) and every retry of that write reuses both. That is what
 * makes it safe to retry a write whose outcome is unknown (OUTCOME_UNKNOWN,
 * an attempt deadline, a connection lost after sending): if the first
 * attempt did apply, the server answers the retry with the first attempt's
 * remembered result instead of applying it again. Attempts that were
 * definitely not applied (NOT_LEADER, PROPOSAL_DROPPED, RESOURCE_EXHAUSTED,
 * connection refused) are retried as they are; the policy is in retry.ts.
 *
 * Errors: a call fails with a {@link TesseraError} carrying the server's
 * code, or with the abort reason of its signal. A write that gives up after
 * any attempt that may have applied fails with OUTCOME_UNKNOWN, never with
 * a code that claims "not applied".
 */
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import type { NodeStatus } from '../api/http-api.ts';
import {
  abortReason,
  failureFromNetwork,
  failureFromResponse,
  failureFromTimeout,
  finalWriteError,
  type AttemptFailure,
} from './errors.ts';
import { LeaderRouter } from './leader-router.ts';
import { RangeCache, type ClientRange } from './range-cache.ts';
import {
  checkCallOptions,
  normalizeEndpoint,
  randomClientId,
  resolveOptions,
  type CallOptions,
  type ClientOptions,
  type GetOptions,
  type ResolvedOptions,
} from './options.ts';
import { backoffDelayMs, mayRetry, sleepMs } from './retry.ts';
import { SessionPool, type WriteSession } from './session-pool.ts';
import {
  TableCatalog,
  TableHandle,
  batchGetRows,
  batchWriteRows,
  routeOf,
  suggestsSchemaChange,
  type AnyRow,
  type BatchGetItem,
  type BatchResult,
  type BatchWriteItem,
  type RowOf,
  type ColumnName,
  type RowShape,
  type RowPosition,
  type TableChanges,
  type TableRequest,
  type TableSchemaInput,
  type TableTransport,
} from './tables.ts';
import type { PkColumnSchema, TableSchema } from '../table/schema.ts';

export type { NodeStatus };

/** A write as the client sends it. */
export type KvWrite =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string }
  | {
      readonly op: 'cas';
      readonly key: string;
      readonly expect: string | null;
      readonly value: string | null;
    };

/** One HTTP request of the API, as the retry loop sees it. */
interface ApiRequest {
  readonly method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  /** Writes change state; their lost attempts are OUTCOME_UNKNOWN. */
  readonly write: boolean;
  /** Sent with every attempt of a write. */
  readonly session?: WriteSession;
  /** Route to the leader of the range holding this key. */
  readonly routeKey?: string;
  /** Route to the leader of this range. */
  readonly range?: number;
  /**
   * Route to the leader of the range holding this table's rows at
   * `position`; without a position, or when the client cannot tell the
   * range, to the leader cached for the table's rows.
   */
  readonly routeTable?: string;
  /** Where in `routeTable` the request's rows lie. */
  readonly position?: RowPosition;
}

type AttemptResult =
  | { readonly ok: true; readonly body: unknown }
  | { readonly ok: false; readonly failure: AttemptFailure };

/** Consecutive NOT_LEADER hints followed at once, before backing off again. */
const HINTS_WITHOUT_BACKOFF_MAX = 1;

/** How long a failed load of the range map keeps the client from asking again, in ms. */
const RANGES_RELOAD_MS = 1_000;
/** Timeout of one attempt to load the range map, in ms. */
const RANGES_LOAD_TIMEOUT_MS = 2_000;
/** How long a failed read of a table's schema keeps the client from asking again, in ms. */
const SCHEMA_RELOAD_MS = 1_000;
/** Timeout of one read of a table's schema for routing, in ms. */
const SCHEMA_LOAD_TIMEOUT_MS = 2_000;
/**
 * Tables whose primary-key columns the client caches at once. Beyond it the
 * least recently added entry is dropped (read again when needed).
 */
const TABLE_SCHEMAS_MAX = 1024;
/** Pages one {@link TesseraClient.scan} call reads at most (each from one range). */
const SCAN_PAGES_MAX = 10_000;

/** The meta range's id: members and table schemas are recorded there. */
const META_RANGE_ID = 1;
/**
 * Tables whose leader the client caches at once. Beyond it the least
 * recently added cache is dropped (its table is found again by hints).
 */
const TABLE_ROUTERS_MAX = 1024;
/** Default bound of {@link TesseraClient.addMember} and removeMember, in ms (a snapshot may take a while). */
export const MEMBER_CHANGE_DEADLINE_MS = 120_000;

/** A node to add to the cluster, running with `--join`. */
export interface NewMember {
  readonly id: number;
  /** `host:port` of its Raft peer transport. */
  readonly raft: string;
  /** `host:port` of its HTTP API. */
  readonly http: string;
  readonly grpcPort?: number;
}

/** What a membership change did: the ranges it went through, in order. */
export interface MemberChange {
  readonly id: number;
  readonly ranges: readonly number[];
}

/**
 * What the client knows of a table's primary key for routing: its columns,
 * the read of its schema in flight, or when that read last failed.
 */
type KeyColumnsEntry =
  | { readonly columns: readonly PkColumnSchema[] }
  | { readonly loading: Promise<readonly PkColumnSchema[] | null> }
  | { readonly failedAt: number };

/** One page of a scan: pairs in key order and where to continue (null: the end). */
export interface ScanPage {
  readonly pairs: readonly { readonly key: string; readonly value: string }[];
  readonly next: string | null;
}

export class TesseraClient {
  private readonly options: ResolvedOptions;
  /** Requests that name no range (status, the range map itself). */
  private readonly router: LeaderRouter;
  /** One leader cache per range id. */
  private readonly routers = new Map<number, LeaderRouter>();
  /** One leader cache per table name: for row requests whose range the client cannot tell. */
  private readonly tableRouters = new Map<string, LeaderRouter>();
  /** The primary-key columns of tables, by name, for routing their rows. */
  private readonly keyColumns = new Map<string, KeyColumnsEntry>();
  private readonly catalog: TableCatalog;
  private readonly tableTransport: TableTransport;
  private readonly sessions: SessionPool;
  private rangeCache: RangeCache | null = null;
  private rangesLoading: Promise<void> | null = null;
  private rangesFailedAt = -Infinity;

  /** Throws INVALID_ARGUMENT for out-of-domain options (see {@link ClientOptions}). */
  constructor(options: ClientOptions) {
    this.options = resolveOptions(options);
    this.router = new LeaderRouter(this.options.endpoints);
    this.sessions = new SessionPool(
      this.options.clientId,
      this.options.concurrentWritesMax,
      this.options.queuedWritesMax,
      randomClientId,
    );
    this.tableTransport = {
      read: (req, opts) => this.sendTable(apiRequestOf(req, false), opts),
      write: (req, opts) =>
        this.withSession(opts, (session, o) =>
          this.sendTable({ ...apiRequestOf(req, true), session }, o),
        ),
      rangeOf: async (table, position, opts) =>
        (await this.rangeOfRows(table, position, opts.signal))?.id ?? null,
      forgetSchema: (table) => {
        this.keyColumns.delete(table);
      },
    };
    this.catalog = new TableCatalog(this.tableTransport);
  }

  /** The id of the client's first exactly-once session. */
  get clientId(): number {
    return this.options.clientId;
  }

  /**
   * The node the client believes leads (`http://host:port`), or null: of
   * the range holding `key` when given, else of the requests that name no range.
   */
  leaderEndpoint(key?: string): string | null {
    if (key === undefined) return this.router.cachedLeader;
    const r = this.rangeCache?.lookup(key);
    return r === undefined ? null : (this.routers.get(r.id)?.cachedLeader ?? null);
  }

  /**
   * The node the client believes leads the rows of table `table`
   * (`http://host:port`), or null if it has none cached: the leader cache
   * of the table's row requests whose range the client cannot tell (see
   * {@link leaderEndpoint} for the leader of a range).
   */
  tableLeaderEndpoint(table: string): string | null {
    return this.tableRouters.get(table)?.cachedLeader ?? null;
  }

  /**
   * Creates a table (`POST /v1/tables`) and resolves to its schema as the
   * server recorded it. The schema is checked locally first.
   *
   * @throws TesseraError INVALID_SCHEMA (locally or from the server),
   *   ALREADY_EXISTS if a table of that name exists (also when a retry of
   *   this very call finds the table its lost first attempt created).
   */
  createTable(schema: TableSchemaInput, opts: CallOptions = {}): Promise<TableSchema> {
    return this.catalog.create(schema, opts);
  }

  /** The schema of table `name`; NOT_FOUND if there is none. */
  describeTable(name: string, opts: CallOptions = {}): Promise<TableSchema> {
    return this.catalog.describe(name, opts);
  }

  /** Every table's schema, sorted by name. */
  listTables(opts: CallOptions = {}): Promise<readonly TableSchema[]> {
    return this.catalog.list(opts);
  }

  /** Changes a table's options; resolves to the new schema. NOT_FOUND, INVALID_SCHEMA. */
  alterTable(name: string, changes: TableChanges, opts: CallOptions = {}): Promise<TableSchema> {
    return this.catalog.alter(name, changes, opts);
  }

  /** Drops table `name` and its rows. */
  dropTable(name: string, opts: CallOptions = {}): Promise<void> {
    return this.catalog.drop(name, opts);
  }

  /**
   * A handle on the rows of table `name`. Nothing is sent until a method of
   * the handle is called; handles are cheap and share the client's routing
   * and sessions.
   *
   * `Row` and `Key` are what the caller states about the table, not checked
   * against its schema: `Row` names every column (primary-key and
   * attribute columns) with its model type (bigint for integers, number for
   * doubles, Uint8Array for binary), `Key` the primary-key columns. E.g.
   * `client.table<{ id: bigint; name: string }, 'id'>('users')`. Without
   * `Key`, any column may appear in a primary key.
   */
  table<Row extends RowShape<Row> = AnyRow, Key extends ColumnName<Row> = never>(
    name: string,
  ): TableHandle<Row, Key> {
    return new TableHandle<Row, Key>(name, this.tableTransport);
  }

  /**
   * One page of the keys in `[start, end)` in byte order (end null: to the
   * end), at most `limit` pairs. A page never spans ranges; this method
   * reads page after page, following `next` across ranges, until it has
   * `limit` pairs or reaches `end`. Linearizable per page unless asked otherwise.
   */
  async scan(
    start: string,
    end: string | null,
    limit: number,
    opts: GetOptions = {},
  ): Promise<ScanPage> {
    if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
    const consistency = opts.consistency ?? 'linearizable';
    const pairs: { key: string; value: string }[] = [];
    let from: string | null = start;
    for (let i = 0; i < SCAN_PAGES_MAX && from !== null && pairs.length < limit; i++) {
      const q = new URLSearchParams({
        start: from,
        limit: String(Math.min(1000, limit - pairs.length)),
      });
      if (end !== null) q.set('end', end);
      if (consistency === 'serializable') q.set('consistency', 'serializable');
      const body = (await this.send(
        { method: 'GET', path: `/v1/kv?${q}`, write: false, routeKey: from },
        opts,
      )) as { pairs?: unknown; next?: unknown } | null;
      if (!Array.isArray(body?.pairs) || !isStringOrNull(body.next)) throw malformed('scan');
      pairs.push(...(body.pairs as { key: string; value: string }[]));
      from = body.next;
    }
    return { pairs, next: from };
  }

  /**
   * Adds a member to the cluster: records it in the meta range, then, range
   * by range (the meta range first), adds it as a learner, waits until it
   * has caught up (by snapshot) and promotes it to voter. The node must be
   * running with `--join` at the given addresses. Every step is idempotent:
   * after a failure, calling again finishes the job. Bounded by
   * `opts.deadlineMs` (default {@link MEMBER_CHANGE_DEADLINE_MS}).
   */
  async addMember(m: NewMember, opts: CallOptions = {}): Promise<MemberChange> {
    checkMemberId(m.id);
    const deadline = performance.now() + (opts.deadlineMs ?? MEMBER_CHANGE_DEADLINE_MS);
    const callOpts = withoutDeadline(opts);
    const body = {
      raft: m.raft,
      http: m.http,
      ...(m.grpcPort !== undefined ? { grpcPort: m.grpcPort } : {}),
    };
    await this.untilDeadline(deadline, callOpts, (o) =>
      this.send(
        { method: 'PUT', path: `/v1/members/${m.id}`, body, write: false, range: META_RANGE_ID },
        o,
      ),
    );
    const ranges = [META_RANGE_ID, ...(await this.ranges(callOpts)).map((r) => r.id)];
    for (const range of ranges) {
      for (const change of ['add-learner', 'promote'] as const) {
        await this.untilDeadline(deadline, callOpts, (o) =>
          this.changeReplicas(range, change, m.id, o),
        );
      }
    }
    return { id: m.id, ranges };
  }

  /**
   * Removes a member: from every data range, then from the meta range, then
   * its record. A range led by the removed node elects another leader.
   * Idempotent and bounded like {@link addMember}.
   */
  async removeMember(id: number, opts: CallOptions = {}): Promise<MemberChange> {
    checkMemberId(id);
    const deadline = performance.now() + (opts.deadlineMs ?? MEMBER_CHANGE_DEADLINE_MS);
    const callOpts = withoutDeadline(opts);
    const ranges = [...(await this.ranges(callOpts)).map((r) => r.id), META_RANGE_ID];
    for (const range of ranges) {
      await this.untilDeadline(deadline, callOpts, (o) =>
        this.changeReplicas(range, 'remove', id, o),
      );
    }
    await this.untilDeadline(deadline, callOpts, (o) =>
      this.send(
        { method: 'DELETE', path: `/v1/members/${id}`, write: false, range: META_RANGE_ID },
        o,
      ),
    );
    return { id, ranges };
  }

  /** One replica-set change at the range's leader; resolves once applied. */
  private async changeReplicas(
    range: number,
    change: 'add-learner' | 'promote' | 'remove',
    node: number,
    opts: CallOptions,
  ): Promise<void> {
    // Idempotent on the server (a change already made answers changed: false): retried freely.
    await this.send(
      {
        method: 'POST',
        path: `/v1/ranges/${range}/replicas`,
        body: { change, node },
        write: false,
        range,
      },
      opts,
    );
  }

  /** Repeats `step` while it fails with a retryable error, until `deadline` (performance.now() ms). */
  private async untilDeadline<T>(
    deadline: number,
    opts: CallOptions,
    step: (o: CallOptions) => Promise<T>,
  ): Promise<T> {
    for (let round = 1; ; round++) {
      const remainingMs = deadline - performance.now();
      try {
        return await step({
          ...opts,
          deadlineMs: Math.max(1, Math.min(remainingMs, this.options.deadlineMs)),
        });
      } catch (e) {
        const retry = e instanceof TesseraError && e.retryable === 'yes';
        if (!retry || deadline - performance.now() <= 0 || opts.signal?.aborted) throw e;
        const delayMs = backoffDelayMs(round, this.options.backoff, Math.random);
        await sleepMs(Math.max(0, Math.min(delayMs, deadline - performance.now())), opts.signal);
      }
    }
  }

  /**
   * Several row writes on any tables, a result per write (see
   * {@link batchWriteRows} in tables.ts): per table by default, all or none with `atomic`.
   */
  async batchWriteRows(
    items: readonly BatchWriteItem[],
    opts: CallOptions & { readonly atomic?: boolean } = {},
  ): Promise<BatchResult<Readonly<Record<string, bigint>>>[]> {
    return batchWriteRows(this.tableTransport, items, opts);
  }

  /** Several row reads on any tables, a result per read (see {@link batchGetRows} in tables.ts). */
  async batchGetRows(
    gets: readonly BatchGetItem[],
    opts: GetOptions = {},
  ): Promise<BatchResult<RowOf<AnyRow, never> | null>[]> {
    return batchGetRows(this.tableTransport, gets, opts);
  }

  /** The data ranges as a node knows them (refreshes the client's range map). */
  async ranges(opts: CallOptions = {}): Promise<readonly ClientRange[]> {
    const body = await this.send({ method: 'GET', path: '/v1/ranges', write: false }, opts);
    const cache = RangeCache.fromBody(body);
    if (cache === null) throw malformed('ranges');
    this.useRanges(cache);
    return cache.ranges;
  }

  /** Sets `key` to `value`; resolves once the write is applied (committed by a quorum). */
  async put(key: string, value: string, opts: CallOptions = {}): Promise<void> {
    checkKey(key);
    if (typeof value !== 'string') throw invalid('the value must be a string');
    await this.write({ op: 'put', key, value }, opts);
  }

  /** Deletes `key` (deleting an absent key succeeds). */
  async delete(key: string, opts: CallOptions = {}): Promise<void> {
    checkKey(key);
    await this.write({ op: 'delete', key }, opts);
  }

  /**
   * Sets `key` to `value` if its current value is `expect` (null: absent);
   * `value` null deletes. Resolves to whether it swapped. A failed
   * comparison is `false`, not an error.
   */
  async cas(
    key: string,
    expect: string | null,
    value: string | null,
    opts: CallOptions = {},
  ): Promise<boolean> {
    checkKey(key);
    if (!isStringOrNull(expect) || !isStringOrNull(value)) {
      throw invalid('expect and value must be strings or null');
    }
    return this.write({ op: 'cas', key, expect, value }, opts);
  }

  /** The value of `key`, or null if absent. Linearizable unless asked otherwise. */
  async get(key: string, opts: GetOptions = {}): Promise<string | null> {
    checkKey(key);
    const consistency = opts.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'serializable') {
      throw invalid('consistency must be "linearizable" or "serializable"');
    }
    const query = consistency === 'serializable' ? '?consistency=serializable' : '';
    const body = await this.send(
      { method: 'GET', path: kvPath(key) + query, write: false, routeKey: key },
      opts,
    );
    const value = (body as { value?: unknown } | null)?.value;
    if (!isStringOrNull(value)) throw malformed('get');
    return value;
  }

  /** The status of the node the client reaches first (the cached leader, if any). */
  async status(opts: CallOptions = {}): Promise<NodeStatus> {
    const body = await this.send({ method: 'GET', path: '/v1/status', write: false }, opts);
    const st = body as Partial<NodeStatus> | null;
    if (typeof st?.id !== 'number' || typeof st.role !== 'string') throw malformed('status');
    return body as NodeStatus;
  }

  /**
   * Sends `op` with the given session and sequence number, retrying as a
   * write always does. Resolves to `swapped` for cas, true otherwise.
   *
   * @internal For tests of exactly-once behaviour: calling it twice with the
   *   same session is what a retry after a lost answer does. Normal writes
   *   draw their sessions from the client's pool; do not mix the two on one
   *   session id.
   */
  async writeWithSeq(op: KvWrite, session: WriteSession, opts: CallOptions = {}): Promise<boolean> {
    const req: ApiRequest =
      op.op === 'put'
        ? {
            method: 'PUT',
            path: kvPath(op.key),
            body: { value: op.value },
            write: true,
            session,
            routeKey: op.key,
          }
        : op.op === 'delete'
          ? { method: 'DELETE', path: kvPath(op.key), write: true, session, routeKey: op.key }
          : {
              method: 'POST',
              path: `${kvPath(op.key)}/cas`,
              body: { expect: op.expect, value: op.value },
              write: true,
              session,
              routeKey: op.key,
            };
    const body = (await this.send(req, opts)) as { ok?: unknown; swapped?: unknown } | null;
    if (op.op === 'cas') {
      if (typeof body?.swapped !== 'boolean') throw malformed('cas');
      return body.swapped;
    }
    if (body?.ok !== true) throw malformed(op.op);
    return true;
  }

  /** Leases a session for `op`, for its whole life, and sends it. */
  private write(op: KvWrite, opts: CallOptions): Promise<boolean> {
    return this.withSession(opts, (session, o) => this.writeWithSeq(op, session, o));
  }

  /**
   * Leases a session for one write, for its whole life (every attempt of
   * `send` carries it), and releases it when the write is over. `send` gets
   * the call options with the deadline that is left after the wait.
   */
  private async withSession<T>(
    opts: CallOptions,
    send: (session: WriteSession, opts: CallOptions) => Promise<T>,
  ): Promise<T> {
    checkCallOptions(opts);
    const deadlineMs = opts.deadlineMs ?? this.options.deadlineMs;
    const start = performance.now();
    const waitLimit = AbortSignal.timeout(deadlineMs);
    const wait = opts.signal === undefined ? waitLimit : AbortSignal.any([opts.signal, waitLimit]);
    const lease = await this.sessions.acquire(wait).catch((e: unknown) => {
      if (opts.signal?.aborted) throw abortReason(opts.signal);
      if (waitLimit.aborted) {
        throw new TesseraError('TIMEOUT', `no free client session within ${deadlineMs} ms`);
      }
      throw e;
    });
    try {
      const remainingMs = Math.max(1, deadlineMs - (performance.now() - start));
      return await send(lease.session, { ...opts, deadlineMs: remainingMs });
    } finally {
      lease.release();
    }
  }

  /**
   * The retry loop: at most `retries + 1` attempts within the call's
   * deadline, backing off between them. Returns the parsed body of the
   * first 2xx answer.
   */
  private async send(req: ApiRequest, opts: CallOptions): Promise<unknown> {
    checkCallOptions(opts);
    const signal = opts.signal;
    if (signal?.aborted) throw abortReason(signal);
    const attemptTimeoutMs = opts.timeoutMs ?? this.options.timeoutMs;
    const deadline = performance.now() + (opts.deadlineMs ?? this.options.deadlineMs);
    // Reads have no effect; writes are idempotent only with their session.
    const idempotent = !req.write || req.session !== undefined;
    let last: AttemptFailure | undefined;
    let anyMaybeApplied = false;
    let backoffs = 0;
    let hintsInARow = 0;
    const router = await this.routerFor(req, signal);
    if (signal?.aborted) throw abortReason(signal);
    for (let attempt = 1; attempt <= this.options.attemptsMax; attempt++) {
      // The first attempt always goes out, however little time is left.
      const remainingMs = Math.max(1, deadline - performance.now());
      if (attempt > 1 && deadline - performance.now() <= 0) break;
      const endpoint = router.target();
      const r = await this.attempt(endpoint, req, Math.min(attemptTimeoutMs, remainingMs), signal);
      if (r.ok) {
        if (req.write) router.succeeded(endpoint);
        return r.body;
      }
      last = r.failure;
      anyMaybeApplied ||= last.applied === 'maybe';
      if (!mayRetry(last.error, idempotent)) throw last.error;
      if (attempt === this.options.attemptsMax) break;
      const hint = last.error.code === 'NOT_LEADER' ? last.leaderHint : null;
      if (hint !== null && router.follow(hint, endpoint)) {
        hintsInARow += 1;
        if (hintsInARow <= HINTS_WITHOUT_BACKOFF_MAX) continue;
      } else {
        hintsInARow = 0;
        // A full leader keeps its place; anything else moves on to the next node.
        if (last.error.code !== 'RESOURCE_EXHAUSTED') router.failed(endpoint);
      }
      backoffs += 1;
      const delayMs = backoffDelayMs(backoffs, this.options.backoff, Math.random);
      await sleepMs(Math.max(0, Math.min(delayMs, deadline - performance.now())), signal);
    }
    assert(last !== undefined, 'the retry loop made no attempt');
    throw req.write ? finalWriteError(last, anyMaybeApplied) : last.error;
  }

  /**
   * The leader cache a request goes through: its range's (loading the range
   * map first if the client has none), else for table rows their table's,
   * else the one for requests that name no range.
   */
  private async routerFor(req: ApiRequest, signal: AbortSignal | undefined): Promise<LeaderRouter> {
    let range = req.range;
    if (range === undefined && req.routeTable !== undefined) {
      if (req.position !== undefined) {
        range = (await this.rangeOfRows(req.routeTable, req.position, signal))?.id;
      }
      if (range === undefined) return this.tableRouter(req.routeTable);
    }
    if (range === undefined && req.routeKey !== undefined) {
      if (this.rangeCache === null) await untilAborted(this.loadRanges(), signal);
      range = this.rangeCache?.lookup(req.routeKey)?.id;
    }
    if (range === undefined) return this.router;
    let router = this.routers.get(range);
    if (router === undefined) {
      router = new LeaderRouter(this.options.endpoints);
      this.routers.set(range, router);
    }
    return router;
  }

  /**
   * Sends a tables API request; an error that suggests the table's schema
   * changed drops the client's copy of its key columns.
   */
  private async sendTable(req: ApiRequest, opts: CallOptions): Promise<unknown> {
    try {
      return await this.send(req, opts);
    } catch (e) {
      const table = req.routeTable;
      if (table !== undefined && e instanceof TesseraError && suggestsSchemaChange(e.code)) {
        this.keyColumns.delete(table);
      }
      throw e;
    }
  }

  /**
   * The range the client believes holds `table`'s rows at `position`
   * (loading the table's key columns and the range map if needed), or
   * undefined if it cannot tell.
   */
  private async rangeOfRows(
    table: string,
    position: RowPosition,
    signal: AbortSignal | undefined,
  ): Promise<ClientRange | undefined> {
    const [columns] = await Promise.all([
      this.keyColumnsOf(table, signal),
      this.rangeCache === null ? untilAborted(this.loadRanges(), signal) : undefined,
    ]);
    if (columns === null || this.rangeCache === null) return undefined;
    const route = routeOf(table, columns, position);
    if (route === null) return undefined;
    return route.below
      ? this.rangeCache.lookupBefore(route.key)
      : this.rangeCache.lookup(route.key);
  }

  /**
   * The primary-key columns of `table`, from the cache or a serializable
   * read of its schema (one at a time per table); null if the read failed
   * (for {@link SCHEMA_RELOAD_MS} after a failure, without asking again).
   */
  private async keyColumnsOf(
    table: string,
    signal: AbortSignal | undefined,
  ): Promise<readonly PkColumnSchema[] | null> {
    const known = this.keyColumns.get(table);
    if (known !== undefined) {
      if ('columns' in known) return known.columns;
      if ('loading' in known) return untilAborted(known.loading, signal);
      if (performance.now() - known.failedAt < SCHEMA_RELOAD_MS) return null;
    }
    const loading = this.catalog
      .describe(table, {
        consistency: 'serializable',
        timeoutMs: SCHEMA_LOAD_TIMEOUT_MS,
        deadlineMs: SCHEMA_LOAD_TIMEOUT_MS,
      })
      .then(
        (schema) => schema.primaryKey,
        () => null,
      )
      .then((columns) => {
        // Unless forgotten meanwhile (an answer said the table changed).
        if (this.keyColumns.get(table) === entry) {
          this.rememberKeyColumns(
            table,
            columns === null ? { failedAt: performance.now() } : { columns },
          );
        }
        return columns;
      });
    const entry: KeyColumnsEntry = { loading };
    this.rememberKeyColumns(table, entry);
    return untilAborted(loading, signal);
  }

  /** Caches `entry` for `table`, dropping the oldest entry beyond TABLE_SCHEMAS_MAX. */
  private rememberKeyColumns(table: string, entry: KeyColumnsEntry): void {
    this.keyColumns.delete(table);
    if (this.keyColumns.size >= TABLE_SCHEMAS_MAX) {
      const oldest = this.keyColumns.keys().next();
      if (oldest.done !== true) this.keyColumns.delete(oldest.value);
    }
    this.keyColumns.set(table, entry);
  }

  /** The leader cache of `table`'s rows, made on first use (bounded by TABLE_ROUTERS_MAX). */
  private tableRouter(table: string): LeaderRouter {
    let router = this.tableRouters.get(table);
    if (router === undefined) {
      if (this.tableRouters.size >= TABLE_ROUTERS_MAX) {
        const oldest = this.tableRouters.keys().next();
        if (oldest.done !== true) this.tableRouters.delete(oldest.value);
      }
      router = new LeaderRouter(this.options.endpoints);
      this.tableRouters.set(table, router);
    }
    return router;
  }

  /** Loads the range map once at a time; a failure leaves the client routing without it. */
  private async loadRanges(): Promise<void> {
    if (performance.now() - this.rangesFailedAt < RANGES_RELOAD_MS) return;
    this.rangesLoading ??= this.send(
      { method: 'GET', path: '/v1/ranges', write: false },
      { timeoutMs: RANGES_LOAD_TIMEOUT_MS, deadlineMs: RANGES_LOAD_TIMEOUT_MS },
    )
      .then((body) => {
        const cache = RangeCache.fromBody(body);
        if (cache === null || cache.ranges.length === 0) this.rangesFailedAt = performance.now();
        else this.useRanges(cache);
      })
      .catch(() => {
        this.rangesFailedAt = performance.now();
      })
      .finally(() => {
        this.rangesLoading = null;
      });
    await this.rangesLoading;
  }

  private useRanges(cache: RangeCache): void {
    this.rangeCache = cache;
    for (const r of cache.ranges) {
      if (r.leaderHttp !== null && !this.routers.has(r.id)) {
        const router = new LeaderRouter(this.options.endpoints);
        router.succeeded(normalizeEndpoint(r.leaderHttp));
        this.routers.set(r.id, router);
      }
    }
  }

  /** One HTTP request to `endpoint` with deadline `timeoutMs`; throws only on abort. */
  private async attempt(
    endpoint: string,
    req: ApiRequest,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<AttemptResult> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const onAbort = (): void => ctl.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const headers: Record<string, string> = {};
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    if (req.session !== undefined) {
      headers['x-tessera-client'] = String(req.session.client);
      headers['x-tessera-seq'] = String(req.session.seq);
    }
    try {
      const res = await this.options.fetch(endpoint + req.path, {
        method: req.method,
        headers,
        ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
        signal: ctl.signal,
      });
      const body = parseJson(await res.text());
      if (res.ok) return { ok: true, body };
      return { ok: false, failure: failureFromResponse(res.status, body, endpoint) };
    } catch (e) {
      if (signal?.aborted) throw abortReason(signal);
      if (ctl.signal.aborted) {
        return { ok: false, failure: failureFromTimeout(endpoint, timeoutMs, req.write) };
      }
      return { ok: false, failure: failureFromNetwork(e, endpoint, req.write) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

const kvPath = (key: string): string => `/v1/kv/${encodeURIComponent(key)}`;

/**
 * A table request as the retry loop takes it: row requests go through the
 * leader cache of their range (or table), catalog requests through the meta range's.
 */
function apiRequestOf(req: TableRequest, write: boolean): ApiRequest {
  const route =
    req.table === null
      ? { range: META_RANGE_ID }
      : {
          routeTable: req.table,
          ...(req.range !== undefined ? { range: req.range } : {}),
          ...(req.position !== undefined ? { position: req.position } : {}),
        };
  return {
    method: req.method,
    path: req.path,
    ...(req.body !== undefined ? { body: req.body } : {}),
    write,
    ...route,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function isStringOrNull(v: unknown): v is string | null {
  return v === null || typeof v === 'string';
}

/** Local checks only for what the server could not even route; sizes are the server's to judge. */
function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0)
    throw invalid('the key must be a non-empty string');
}

function checkMemberId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 2 ** 31 - 1) {
    throw invalid('a member id must be an integer from 1 to 2147483647');
  }
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message);
}

function malformed(what: string): TesseraError {
  return new TesseraError('INTERNAL', `malformed ${what} response from the server`);
}

/** Waits for `p`, or rejects with the signal's reason as soon as it aborts. */
async function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) throw abortReason(signal);
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** `opts` without its deadline: each step of a long operation gets its own. */
function withoutDeadline(opts: CallOptions): CallOptions {
  const copy = { ...opts };
  delete copy.deadlineMs;
  return copy;
}
