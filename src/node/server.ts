/**
 * One Tessera node process (multi-Raft). It hosts a replica of the meta
 * range (range 1: members and range descriptors, see server/meta.ts) and of
 * every data range; each range is its own Raft group. It owns the real I/O
 * around the shared replica driver: one log engine and one LMDB state
 * engine on disk for all ranges, the TCP peer transport (messages tagged
 * with their range), a 10 ms tick timer and the client APIs (http-api.ts,
 * grpc-server.ts), which reach the ranges through the {@link KvService}
 * methods below: a key's range is looked up in the meta range's
 * descriptors.
 *
 * Durability and group commit: every Ready's log writes are synced before
 * its messages go out and its committed entries apply (replica.ts). Work
 * that arrives together (client requests, peer messages, for any ranges)
 * schedules one pump with setImmediate, which stages the Readies of all
 * ranges and syncs them with a single fsync.
 *
 * Membership: a founder bootstraps every range with all founders as voters.
 * A node started with `join` hosts nothing until a range's leader reaches
 * it; it then creates an empty replica that catches up by snapshot. The
 * steps of adding and removing a member (record it in the meta range,
 * learner, promote; or remove from every range) are driven by the client
 * (client/members.ts) through {@link changeReplicas} and the member records.
 *
 * Failure: an I/O error of the storage (a failed fsync) is thrown from the
 * pump and crashes the process: after it nothing is known about what is
 * durable, and recovery on restart sorts it out (fail-stop).
 */
import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { assertNever } from '../core/assert.ts';
import { ERROR_CODES, TesseraError, type ErrorCode } from '../core/errors.ts';
import type { NodeId, RangeId } from '../core/ids.ts';
import { NO_NODE } from '../core/ids.ts';
import { SeededRng } from '../core/rng.ts';
import type { KvCommand, KvResult } from '../kv/command.ts';
import { encodeCommand, type TableWrite } from '../kv/command.ts';
import { garbageIn } from '../kv/table-gc.ts';
import { GC_BUDGET_DEFAULT } from '../kv/table-apply.ts';
import type { ApplyOutcome, KvPage, KvStateMachine } from '../kv/state-machine.ts';
import { SESSIONLESS } from '../kv/state-machine.ts';
import { DEFAULT_RAFT_CONFIG } from '../raft/raft.ts';
import type { ConfChangeStep, Entry, Message, Ready } from '../raft/types.ts';
import { Replica } from '../server/replica.ts';
import { DEFAULT_NODE_LIVENESS, NodeLiveness } from '../server/node-liveness.ts';
import {
  META_RANGE,
  MEMBER_KEYS,
  RANGE_KEYS,
  RangeMap,
  decodeDescriptor,
  decodeMember,
  encodeMember,
  initialDescriptors,
  initialMetaPairs,
  memberKey,
  tableKey,
  TABLE_KEYS,
  type MemberRecord,
  type TableRecord,
} from '../server/meta.ts';
import { alterTable, parseTableSchema, pkColumnTypes, type TableSchema } from '../table/schema.ts';
import { getRange, getRow } from '../table/row-store.ts';
import { compareBytes } from '../table/key-codec.ts';
import { rowRoutingKey, rowSpanOf, routingKeyAt } from '../table/routing.ts';
import {
  ROW_SCAN_LIMIT_DEFAULT,
  ROW_SCAN_LIMIT_MAX,
  deleteWrite,
  filterOf,
  jsonObject,
  primaryKeyJson,
  primaryKeyOf,
  putWrite,
  readOptionsOf,
  rowJson,
  partitionKeyJson,
  scanBoundsOf,
  updateWrite,
} from '../api/table-json.ts';
import { startGrpcServer, type GrpcServerHandle } from '../api/grpc-server.ts';
import {
  buildHttpApi,
  type KvService,
  type NodeStatus,
  type RangeInfo,
  type RangeStatus,
  type ReplicaChange,
  type TableService,
  type WriteOp,
} from '../api/http-api.ts';
import { LmdbStateEngine } from '../storage/engine/lmdb-state-engine.ts';
import { LogEngine } from '../storage/wal/log-engine.ts';
import { TcpTransport, type PeerAddress } from '../transport/tcp-transport.ts';
import { NodeFileSystem } from './fs.ts';
import { PendingRequests } from './pending-requests.ts';
import { NodeMetrics } from './metrics.ts';

/** Raft tick period, in milliseconds. */
export const TICK_MS = 10;
/** Followers campaign after 50..100 ticks (500..1000 ms) without hearing from a leader. */
export const ELECTION_TIMEOUT_TICKS = 50;
/** A leader heartbeats every 5 ticks (50 ms). */
export const HEARTBEAT_INTERVAL_TICKS = 5;
/** Client requests in flight on one node, all ranges together; beyond this new ones get RESOURCE_EXHAUSTED. */
export const PENDING_REQUESTS_MAX = 1024;
/** How long a write or linearizable read waits before TIMEOUT / OUTCOME_UNKNOWN, in ms. */
export const REQUEST_DEADLINE_MS = 5_000;
/** Ranges one node hosts at most; a message for a further range is dropped. */
export const RANGES_PER_NODE_MAX = 10_000;
/**
 * A peer node is deemed down after this long without any frame from it
 * (the transport sends a keepalive every 250 ms on an idle link); quiet
 * followers of a range whose leader is on a down node then wake and may
 * elect another leader.
 */
export const LIVENESS_TIMEOUT_MS = 1_000;
/** Applied entries between two log compactions. */
const SNAPSHOT_EVERY_ENTRIES = 1000;
/** Requests without a session are matched to their answers by a random number below this. */
const SERVER_SESSION_MAX = 2 ** 48;

/** Where one member listens: the Raft peer transport and the HTTP API. */
export interface MemberAddress {
  readonly raftHost: string;
  readonly raftPort: number;
  readonly httpHost: string;
  readonly httpPort: number;
}

/** Settings of a {@link TesseraServer}. */
export interface TesseraServerOptions {
  /** This node; must be a key of `members`. */
  readonly id: NodeId;
  /** Data directory: `wal/` holds the log engine, `state/` the LMDB state engine. */
  readonly dir: string;
  /** Peers must present the same cluster id (transport handshake). */
  readonly clusterId: string;
  /**
   * Founders: every founding member, this node included (all founders must
   * be given the same list). Joining nodes (`join`): where the current
   * members listen, this node included; the meta range takes over once
   * this node has it.
   */
  readonly members: ReadonlyMap<NodeId, MemberAddress>;
  /**
   * Split points of a new cluster's key space: the data ranges are
   * `["", s1)`, `[s1, s2)`, ... `[sN, end)`. Every founder must be given the
   * same list (as with `members`); ignored after the first start.
   */
  readonly initialSplits?: readonly string[];
  /**
   * Join an existing cluster instead of founding one: start with no ranges
   * and wait for the members to add this node (`tessera member add`).
   */
  readonly join?: boolean;
  /** Defaults to a pino logger on stderr. */
  readonly logger?: Logger;
  /** When set, also serve the gRPC API (src/api/grpc-server.ts) on httpHost:grpcPort. */
  readonly grpcPort?: number;
}

/** One hosted range: its replica and the client requests waiting on it. */
interface Hosted {
  readonly range: RangeId;
  readonly replica: Replica;
  readonly pending: PendingRequests;
  /** The term and leader seen after the last pump: a change fails waiting reads. */
  seen: { term: number; leader: NodeId };
}

/** A running node: storage, transport, timers and APIs, owned together. */
interface Running {
  readonly log: LogEngine;
  readonly state: LmdbStateEngine;
  readonly transport: TcpTransport;
  readonly http: FastifyInstance;
  readonly grpc: GrpcServerHandle | null;
  readonly ticker: NodeJS.Timeout;
}

/** One node process: hosts a replica of the meta range and of every data range. */
export class TesseraServer implements KvService, TableService {
  private readonly logger: Logger;
  /** Distinguishes this process's read contexts from an earlier life's. */
  private readonly bootNonce = randomInt(0, 2 ** 32);
  private readCounter = 0;
  private readonly hosted = new Map<RangeId, Hosted>();
  /** Which peer nodes were heard from lately (any frame, keepalives included). */
  private readonly liveness = new NodeLiveness({
    livenessTimeoutTicks: LIVENESS_TIMEOUT_MS / TICK_MS,
    peersMax: DEFAULT_NODE_LIVENESS.peersMax,
  });
  /** The data ranges, from the meta range's descriptors. */
  private rangeMap = new RangeMap([]);
  /** The members, from the meta range once it has any (else the configured list). */
  private members = new Map<NodeId, MemberRecord>();
  private metaChanged = false;
  /** Table garbage collection: the next row to collect from, per table id (leaders only). */
  /** GC cursors and commands in flight, by `tableId:rangeId`. */
  private readonly gcCursor = new Map<string, Uint8Array>();
  private readonly gcInFlight = new Set<string>();
  private gcTicks = 0;
  private storage: { log: LogEngine; state: LmdbStateEngine } | null = null;
  private running: Running | null = null;
  private stopped = false;
  private pumpScheduled = false;
  private readonly metrics = new NodeMetrics({
    status: () => this.status(),
    transportStats: () => this.running?.transport.stats() ?? null,
  });

  constructor(private readonly options: TesseraServerOptions) {
    if (!options.members.has(options.id)) {
      throw new TesseraError('INVALID_ARGUMENT', `node ${options.id} is not a cluster member`);
    }
    this.logger = options.logger ?? pino({ name: `tessera-${options.id}` }, pino.destination(2));
    for (const [id, m] of options.members) this.members.set(id, recordOf(id, m));
  }

  /**
   * Opens (bootstrapping a founder on first start) the storage, recovers the
   * hosted replicas, then listens for peers and clients. Resolves once all listen.
   */
  async start(): Promise<void> {
    const { id, dir } = this.options;
    const fs = new NodeFileSystem();
    fs.mkdirp(dir);
    const log = LogEngine.open(fs, `${dir}/wal`);
    const state = LmdbStateEngine.open(`${dir}/state`);
    this.storage = { log, state };
    if (state.applied(META_RANGE) === null && this.options.join !== true) this.bootstrap();
    if (state.applied(META_RANGE) !== null) {
      this.host(META_RANGE);
      this.refreshMeta();
      for (const r of this.rangeMap.ranges) this.host(r.id);
    }
    const self = this.options.members.get(id)!;
    const transport = new TcpTransport({
      nodeId: id,
      clusterId: this.options.clusterId,
      onMessage: (range, msg) => this.onPeerMessage(range, msg),
      onPeerHeard: (peer) => this.liveness.heard(peer),
      logger: this.logger,
      addresses: this.peerAddresses(),
    });
    await transport.listen(self.raftHost, self.raftPort);
    const http = buildHttpApi(this, this.metrics, this.logger);
    await http.listen({ host: self.httpHost, port: self.httpPort });
    const { grpcPort } = this.options;
    const grpc =
      grpcPort === undefined
        ? null
        : await startGrpcServer(this, self.httpHost, grpcPort, { logger: this.logger });
    const ticker = setInterval(() => this.tick(), TICK_MS);
    this.running = { log, state, transport, http, grpc, ticker };
    this.logger.info(
      { id, dir, ranges: [...this.hosted.keys()], join: this.options.join === true },
      'node started',
    );
    this.pump();
  }

  /** Stops timers, APIs and the transport, fails requests in flight, closes storage. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const r = this.running;
    if (r === null) {
      this.storage?.log.close();
      this.storage?.state.close();
      return;
    }
    clearInterval(r.ticker);
    const stopping = new TesseraError('UNAVAILABLE', 'the node is stopping');
    for (const h of this.hosted.values()) h.pending.rejectAll(stopping);
    await r.grpc?.close();
    await r.http.close();
    await r.transport.close();
    r.log.close();
    r.state.close();
    this.logger.info({ id: this.options.id }, 'node stopped');
  }

  /** {@inheritDoc KvService.write} */
  async write(op: WriteOp, session: { client: number; seq: number } | null): Promise<KvResult> {
    return this.writeTo(this.rangeOf(op.key), op, session);
  }

  /** {@inheritDoc KvService.read} */
  async read(key: string, linearizable: boolean): Promise<string | null> {
    return this.readState(this.rangeOf(key), linearizable, (sm) => sm.get(key));
  }

  /**
   * {@inheritDoc KvService.scan}
   * One page comes from one range: at a range's end the page stops early
   * and `next` is the next range's start, so clients continue there.
   */
  async scan(
    start: string,
    end: string | null,
    limit: number,
    bytesMax: number,
    linearizable: boolean,
  ): Promise<KvPage> {
    const h = this.rangeOf(start);
    const d = this.rangeMap.byId(h.range)!;
    const stopsEarly = d.end !== null && (end === null || compareKeys(d.end, end) < 0);
    const until = stopsEarly ? d.end : end;
    const page = await this.readState(h, linearizable, (sm) =>
      sm.scan(start, until, limit, bytesMax),
    );
    return page.next === null && stopsEarly ? { pairs: page.pairs, next: d.end } : page;
  }

  /** {@inheritDoc KvService.status} */
  status(): NodeStatus {
    const meta = this.hosted.get(META_RANGE)?.replica.raft.status();
    return {
      id: this.options.id,
      pid: process.pid,
      role: meta?.role ?? 'follower',
      term: meta?.term ?? 0,
      leader: meta?.leader ?? NO_NODE,
      commit: meta?.commit ?? 0,
      applied: meta?.applied ?? 0,
      lastIndex: meta?.lastIndex ?? 0,
      members: [...this.members.values()]
        .sort((a, b) => a.id - b.id)
        .map((m) => ({
          id: m.id,
          raft: m.raft,
          http: m.http,
          ...(m.grpcPort !== undefined ? { grpcPort: m.grpcPort } : {}),
        })),
      ranges: [...this.hosted.values()]
        .sort((a, b) => a.range - b.range)
        .map((h) => this.rangeStatus(h)),
    };
  }

  /** {@inheritDoc KvService.ranges} */
  ranges(): RangeInfo[] {
    return this.rangeMap.ranges.map((d) => {
      const leader = this.hosted.get(d.id)?.replica.raft.status().leader ?? NO_NODE;
      return { ...d, leader, leaderHttp: this.httpAddressOf(leader) };
    });
  }

  /** {@inheritDoc KvService.httpAddressOf} */
  httpAddressOf(id: NodeId): string | null {
    return this.members.get(id)?.http ?? null;
  }

  /** {@inheritDoc KvService.putMember} */
  async putMember(m: MemberRecord, session: { client: number; seq: number } | null): Promise<void> {
    const op: WriteOp = { op: 'put', key: memberKey(m.id), value: encodeMember(m), expect: null };
    await this.writeTo(this.hostedOrFail(META_RANGE), op, session);
  }

  /** {@inheritDoc KvService.deleteMember} */
  async deleteMember(id: NodeId, session: { client: number; seq: number } | null): Promise<void> {
    const op: WriteOp = { op: 'delete', key: memberKey(id), value: null, expect: null };
    await this.writeTo(this.hostedOrFail(META_RANGE), op, session);
  }

  /** {@inheritDoc KvService.changeReplicas} */
  async changeReplicas(range: RangeId, change: ReplicaChange, node: NodeId): Promise<boolean> {
    const h = this.hostedOrFail(range);
    const raft = h.replica.raft;
    const st = raft.status();
    if (st.role !== 'leader') {
      throw new TesseraError('NOT_LEADER', undefined, { leaderHint: st.leader, range });
    }
    const { voters, votersOutgoing, learners } = st.conf;
    const voter = voters.includes(node);
    const learner = learners.includes(node);
    let step: ConfChangeStep;
    switch (change) {
      case 'add-learner':
        if (voter || learner) return false;
        step = { type: 'add-learner', node };
        break;
      case 'promote': {
        if (voter) return false;
        if (!learner) {
          throw new TesseraError(
            'INVALID_ARGUMENT',
            `node ${node} is not a learner of range ${range}`,
          );
        }
        const match = raft.progressOf(node)?.match ?? 0;
        if (match < raft.log.committed) {
          throw new TesseraError(
            'UNAVAILABLE',
            `node ${node} has not caught up on range ${range} (match ${match}, commit ${raft.log.committed})`,
          );
        }
        step = { type: 'add-voter', node };
        break;
      }
      case 'remove':
        if (!voter && !learner && !votersOutgoing.includes(node)) return false;
        step = { type: 'remove-node', node };
        break;
      default:
        assertNever(change);
    }
    this.checkCapacity();
    const r = raft.proposeConfChange({ kind: 'change', steps: [step] });
    if (!r.ok) throw this.refusal(r.code, r.leaderHint, range);
    const done = h.pending.addWrite(confSession(r.index, r.term), r.index, r.term);
    this.schedulePump();
    await done;
    return true;
  }

  /** {@inheritDoc KvService.createTable} */
  async createTable(input: unknown, session: Session | null): Promise<TableSchema> {
    const schema = parseTableSchema(input);
    this.checkPartitionSplits(schema);
    const record: TableRecord = { id: randomInt(1, 2 ** 32), schema };
    const op: WriteOp = {
      op: 'cas',
      key: tableKey(schema.name),
      expect: null,
      value: JSON.stringify(record),
    };
    const r = await this.writeTo(this.hostedOrFail(META_RANGE), op, session);
    if (!r.ok) throw new TesseraError('ALREADY_EXISTS', `table ${schema.name} already exists`);
    return schema;
  }

  /**
   * Ranges split a table's rows at partition keys of one type (the cluster's
   * `table:NAME:TYPE:VALUE` splits); a table of that name must have a
   * partition key of that type, or its rows could not be told apart at the
   * boundary. INVALID_SCHEMA otherwise.
   */
  private checkPartitionSplits(schema: TableSchema): void {
    const first = schema.primaryKey[0]!;
    for (const d of this.rangeMap.ranges) {
      const span = rowSpanOf(schema.name, d.start, d.end);
      if (span?.start == null) continue;
      try {
        partitionKeyJson(schema, span.start);
      } catch {
        throw new TesseraError(
          'INVALID_SCHEMA',
          `the cluster splits table ${schema.name} at a partition key that is not of type ${first.type}; primaryKey[0] must match it`,
        );
      }
    }
  }

  /** {@inheritDoc KvService.listTables} */
  async listTables(): Promise<TableSchema[]> {
    const meta = this.hostedOrFail(META_RANGE);
    const values = await this.readState(meta, true, (sm) => readAll(sm, TABLE_KEYS));
    return values.map((v) => parseTableSchema((JSON.parse(v) as TableRecord).schema));
  }

  /** {@inheritDoc KvService.describeTable} */
  async describeTable(name: string): Promise<TableSchema> {
    return (await this.tableNamed(name, true)).schema;
  }

  /** {@inheritDoc KvService.alterTable} */
  async alterTable(name: string, changes: unknown, session: Session | null): Promise<TableSchema> {
    const t = await this.tableNamed(name, true);
    const schema = alterTable(t.schema, changes);
    const op: WriteOp = {
      op: 'cas',
      key: tableKey(name),
      expect: t.raw,
      value: JSON.stringify({ id: t.id, schema } satisfies TableRecord),
    };
    const r = await this.writeTo(this.hostedOrFail(META_RANGE), op, session);
    if (!r.ok) {
      throw new TesseraError(
        'CONDITION_FAILED',
        `table ${name} changed meanwhile; read it and retry`,
      );
    }
    return schema;
  }

  /** {@inheritDoc KvService.dropTable} */
  async dropTable(name: string, session: Session | null): Promise<void> {
    const t = await this.tableNamed(name, true);
    const op: WriteOp = { op: 'cas', key: tableKey(name), expect: t.raw, value: null };
    const r = await this.writeTo(this.hostedOrFail(META_RANGE), op, session);
    if (!r.ok) throw new TesseraError('CONDITION_FAILED', `table ${name} changed meanwhile; retry`);
  }

  /** {@inheritDoc KvService.writeRow} */
  async writeRow(
    name: string,
    kind: 'put' | 'update' | 'delete',
    body: unknown,
    session: Session | null,
  ): Promise<KvResult> {
    // The schema as of now (a linearizable meta read): a write to a table
    // dropped or altered a moment ago must not go by a stale local copy.
    const t = await this.tableNamed(name, true);
    const table =
      kind === 'put'
        ? putWrite(t.schema, t.id, body)
        : kind === 'update'
          ? updateWrite(t.schema, t.id, body)
          : deleteWrite(t.schema, t.id, body);
    const op: WriteOp = { op: 'table', key: '', value: null, expect: null, table };
    const r = await this.writeTo(this.rowRange(name, t.schema, table.rowKey), op, session);
    if (!r.ok) {
      const e = r.error ?? { code: 'INTERNAL', message: 'the row write did not apply' };
      throw new TesseraError(
        Object.hasOwn(ERROR_CODES, e.code) ? (e.code as ErrorCode) : 'INTERNAL',
        e.message,
      );
    }
    return r;
  }

  /** {@inheritDoc KvService.getRow} */
  async getRow(
    name: string,
    body: unknown,
    linearizable: boolean,
  ): Promise<Record<string, unknown> | null> {
    const t = await this.tableNamed(name, linearizable);
    const b = jsonObject(body, 'the body');
    const { rowKey } = primaryKeyOf(t.schema, b.primaryKey);
    const options = readOptionsOf(b);
    const key = new Uint8Array(Buffer.from(rowKey, 'base64'));
    return this.readState(this.rowRange(name, t.schema, rowKey), linearizable, (sm) => {
      const row = getRow(sm.tableView(t.id), key, options, t.schema, Date.now());
      return row === null ? null : rowJson(t.schema, row);
    });
  }

  /** {@inheritDoc KvService.scanRows} */
  async scanRows(
    name: string,
    body: unknown,
    linearizable: boolean,
    pageBytesMax: number = ROW_PAGE_BYTES_MAX,
  ): Promise<{
    rows: Record<string, unknown>[];
    next: Record<string, unknown> | null;
    nextExclusive?: true;
  }> {
    const t = await this.tableNamed(name, linearizable);
    const b = jsonObject(body, 'the body');
    if (b.direction !== undefined && b.direction !== 'forward' && b.direction !== 'backward') {
      throw new TesseraError('INVALID_ARGUMENT', 'direction must be "forward" or "backward"');
    }
    const direction = b.direction === 'backward' ? 'backward' : 'forward';
    const limit = b.limit ?? ROW_SCAN_LIMIT_DEFAULT;
    if (
      !Number.isInteger(limit) ||
      (limit as number) < 1 ||
      (limit as number) > ROW_SCAN_LIMIT_MAX
    ) {
      throw new TesseraError(
        'INVALID_ARGUMENT',
        `limit must be an integer from 1 to ${ROW_SCAN_LIMIT_MAX}`,
      );
    }
    if (b.startExclusive !== undefined && typeof b.startExclusive !== 'boolean') {
      throw new TesseraError('INVALID_ARGUMENT', 'startExclusive must be a boolean');
    }
    const startExclusive = b.startExclusive === true;
    const backward = direction === 'backward';
    const { start, end } = scanBoundsOf(t.schema, b, backward);
    // The range holding the scan's first row: the one holding `start`, or,
    // for a backward scan from an exclusive start, the one just below it.
    const at = routingKeyAt(name, start);
    const d =
      backward && startExclusive ? this.rangeMap.lookupBefore(at) : this.rangeMap.lookup(at);
    if (d === undefined)
      throw new TesseraError('UNAVAILABLE', 'this node does not know the ranges yet');
    const span = rowSpanOf(name, d.start, d.end) ?? { start: null, end: null };
    const filter = filterOf(b);
    const options = {
      ...readOptionsOf(b),
      direction,
      limit: limit as number,
      bytesMax: Math.min(pageBytesMax, ROW_PAGE_BYTES_MAX),
      startExclusive,
      span,
      ...(filter !== undefined ? { filter } : {}),
    } as const;
    // Where the scan goes on past this range, if its bounds reach beyond it:
    // forward from the range's end (inclusive), backward from its start (exclusive).
    const edge = backward ? span.start : span.end;
    const beyond =
      edge !== null &&
      (end === null || (backward ? compareBytes(end, edge) < 0 : compareBytes(edge, end) < 0));
    return this.readState(this.hostedOrFail(d.id), linearizable, (sm) => {
      const page = getRange(sm.tableView(t.id), start, end, options, t.schema, Date.now());
      const rows = page.rows.map((r) => rowJson(t.schema, r));
      if (page.next !== null) return { rows, next: primaryKeyJson(t.schema, page.next) };
      if (!beyond) return { rows, next: null };
      const next = partitionKeyJson(t.schema, edge);
      return backward ? { rows, next, nextExclusive: true as const } : { rows, next };
    });
  }

  /** The range of table `name`'s row with encoded key `rowKey` (base64). */
  private rowRange(name: string, schema: TableSchema, rowKey: string): Hosted {
    const bytes = new Uint8Array(Buffer.from(rowKey, 'base64'));
    return this.rangeOf(rowRoutingKey(name, pkColumnTypes(schema), bytes));
  }

  /** {@inheritDoc TableService.primaryKeyOf} */
  async primaryKeyOf(name: string, rowKey: string): Promise<Record<string, unknown>> {
    const t = await this.tableNamed(name, false);
    return primaryKeyJson(t.schema, new Uint8Array(Buffer.from(rowKey, 'base64')));
  }

  /** {@inheritDoc TableService.batchWriteRows} */
  async batchWriteRows(body: unknown, session: Session | null): Promise<BatchResult[]> {
    const b = jsonObject(body, 'the body');
    if (!Array.isArray(b.writes) || b.writes.length === 0 || b.writes.length > BATCH_ROWS_MAX) {
      throw new TesseraError(
        'INVALID_ARGUMENT',
        `writes must be an array of 1 to ${BATCH_ROWS_MAX} row writes`,
      );
    }
    if (b.atomic !== undefined && typeof b.atomic !== 'boolean') {
      throw new TesseraError('INVALID_ARGUMENT', 'atomic must be a boolean');
    }
    const atomic = b.atomic === true;
    const tables = new Map<string, Promise<{ id: number; schema: TableSchema }>>();
    const items = await Promise.all(
      (b.writes as unknown[]).map(async (raw, i) => {
        const w = jsonObject(raw, `writes[${i}]`);
        if (typeof w.table !== 'string')
          throw new TesseraError('INVALID_ARGUMENT', `writes[${i}].table must be a table name`);
        const kind = w.kind;
        if (kind !== 'put' && kind !== 'update' && kind !== 'delete') {
          throw new TesseraError(
            'INVALID_ARGUMENT',
            `writes[${i}].kind must be "put", "update" or "delete"`,
          );
        }
        const name = w.table;
        if (!tables.has(name)) tables.set(name, this.tableNamed(name, true));
        const t = await tables.get(name)!;
        const write =
          kind === 'put'
            ? putWrite(t.schema, t.id, w)
            : kind === 'update'
              ? updateWrite(t.schema, t.id, w)
              : deleteWrite(t.schema, t.id, w);
        return { write, host: this.rowRange(name, t.schema, write.rowKey) };
      }),
    );
    // One command per range, in the order of the batch; atomic only within one range.
    const groups = new Map<RangeId, number[]>();
    for (const [i, it] of items.entries()) {
      const g = groups.get(it.host.range) ?? [];
      g.push(i);
      groups.set(it.host.range, g);
    }
    if (atomic && groups.size > 1) {
      throw new TesseraError(
        'INVALID_ARGUMENT',
        'an atomic batch must write rows of one range only',
      );
    }
    const results: BatchResult[] = new Array<BatchResult>(items.length);
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        const host = items[indexes[0]!]!.host;
        const op: WriteOp = {
          op: 'table',
          key: '',
          value: null,
          expect: null,
          batch: { writes: indexes.map((i) => items[i]!.write), atomic },
        };
        let r: KvResult;
        try {
          r = await this.writeTo(host, op, session);
        } catch (e) {
          // One range failing (not its leader, a timeout) fails its rows only.
          if (!(e instanceof TesseraError) || groups.size === 1) throw e;
          for (const i of indexes) results[i] = { error: { code: e.code, message: e.message } };
          return;
        }
        for (const [j, i] of indexes.entries()) {
          const one = r.results?.[j];
          results[i] =
            one === undefined
              ? { error: r.error ?? { code: 'INTERNAL', message: 'no result' } }
              : one.ok
                ? {
                    ok: true,
                    ...(one.increments !== undefined ? { increments: incrementsOf(one) } : {}),
                  }
                : { error: one.error! };
        }
      }),
    );
    return results;
  }

  /** {@inheritDoc TableService.batchGetRows} */
  async batchGetRows(body: unknown, linearizable: boolean): Promise<BatchResult[]> {
    const b = jsonObject(body, 'the body');
    if (!Array.isArray(b.gets) || b.gets.length === 0 || b.gets.length > BATCH_ROWS_MAX) {
      throw new TesseraError(
        'INVALID_ARGUMENT',
        `gets must be an array of 1 to ${BATCH_ROWS_MAX} row reads`,
      );
    }
    return Promise.all(
      (b.gets as unknown[]).map(async (raw, i): Promise<BatchResult> => {
        const g = jsonObject(raw, `gets[${i}]`);
        if (typeof g.table !== 'string') {
          throw new TesseraError('INVALID_ARGUMENT', `gets[${i}].table must be a table name`);
        }
        try {
          return { row: await this.getRow(g.table, g, linearizable) };
        } catch (e) {
          if (!(e instanceof TesseraError) || e.code === 'INVALID_ARGUMENT') throw e;
          return { error: { code: e.code, message: e.message } };
        }
      }),
    );
  }

  /**
   * A table's record: after a linearizable read of the meta range when
   * `fresh` (writes and linearizable reads: a table dropped or altered a
   * moment ago is seen so), else from the local meta replica (serializable
   * reads; a linearizable read when the local replica lacks it). NOT_FOUND
   * if there is no such table.
   */
  private async tableNamed(
    name: string,
    fresh: boolean,
  ): Promise<{ id: number; schema: TableSchema; raw: string }> {
    const meta = this.hostedOrFail(META_RANGE);
    let raw = fresh ? null : meta.replica.sm.get(tableKey(name));
    if (raw === null) raw = await this.readState(meta, true, (sm) => sm.get(tableKey(name)));
    if (raw === null) throw new TesseraError('NOT_FOUND', `no table ${name}`);
    const record = JSON.parse(raw) as TableRecord;
    return { id: record.id, schema: parseTableSchema(record.schema), raw };
  }

  private async writeTo(
    h: Hosted,
    op: WriteOp,
    session: { client: number; seq: number } | null,
  ): Promise<KvResult> {
    this.live();
    this.checkCapacity();
    // Without a session the command is applied without exactly-once bookkeeping;
    // the random number only matches the answer to this request.
    const s = session ?? { client: SESSIONLESS, seq: randomInt(1, SERVER_SESSION_MAX) };
    const cmd: KvCommand = { ...op, client: s.client, seq: s.seq, at: Date.now() };
    const r = h.replica.raft.propose(encodeCommand(cmd));
    if (!r.ok) throw this.refusal(r.code, r.leaderHint, h.range);
    const done = h.pending.addWrite(`${s.client}:${s.seq}`, r.index, r.term);
    this.schedulePump();
    return this.warnAtDeadline(
      done,
      h,
      'OUTCOME_UNKNOWN',
      'write did not apply before its deadline',
      {
        index: r.index,
        term: r.term,
      },
    );
  }

  /** Runs `serve` on the state: now (serializable) or once a ReadIndex round confirms it. */
  private async readState<T>(
    h: Hosted,
    linearizable: boolean,
    serve: (sm: KvStateMachine) => T,
  ): Promise<T> {
    this.live();
    if (!linearizable) return serve(h.replica.sm);
    this.checkCapacity();
    const context = `${this.options.id}.${this.bootNonce}.${h.range}.${++this.readCounter}`;
    const r = h.replica.raft.readIndex(context);
    if (!r.ok) throw this.refusal(r.code, 'leaderHint' in r ? r.leaderHint : NO_NODE, h.range);
    const done = h.pending.addRead(context, () => {
      this.live();
      return serve(h.replica.sm);
    });
    this.schedulePump();
    return this.warnAtDeadline(done, h, 'TIMEOUT', 'read was not confirmed before its deadline', {
      context,
    });
  }

  /**
   * `request` as it is, but a failure with `code` (its deadline passed) is
   * logged with where the replica stood: the evidence for a slow path.
   */
  private warnAtDeadline<T>(
    request: Promise<T>,
    h: Hosted,
    code: 'OUTCOME_UNKNOWN' | 'TIMEOUT',
    msg: string,
    details: Record<string, unknown>,
  ): Promise<T> {
    return request.catch((e: unknown) => {
      if (e instanceof TesseraError && e.code === code) {
        const st = h.replica.raft.status();
        const { role, leader, term, commit, applied, lastIndex, quiet } = st;
        const raft = { role, leader, term, commit, applied, lastIndex, quiet };
        this.logger.warn({ range: h.range, ...details, raft }, msg);
      }
      throw e;
    });
  }

  private rangeStatus(h: Hosted): RangeStatus {
    const st = h.replica.raft.status();
    const d = this.rangeMap.byId(h.range);
    return {
      id: h.range,
      kind: h.range === META_RANGE ? 'meta' : 'data',
      start: d?.start ?? '',
      end: h.range === META_RANGE ? '' : (d?.end ?? null),
      role: st.role,
      quiet: st.quiet,
      leader: st.leader,
      term: st.term,
      commit: st.commit,
      applied: st.applied,
      lastIndex: st.lastIndex,
      voters: [...st.conf.voters],
      learners: [...st.conf.learners],
    };
  }

  /** The hosted replica of the data range holding `key`. */
  private rangeOf(key: string): Hosted {
    const d = this.rangeMap.lookup(key);
    if (d === undefined) {
      throw new TesseraError('UNAVAILABLE', 'this node does not know the ranges yet');
    }
    return this.hostedOrFail(d.id);
  }

  private hostedOrFail(range: RangeId): Hosted {
    const h = this.hosted.get(range);
    if (h === undefined) {
      throw new TesseraError('UNAVAILABLE', `range ${range} has no replica on this node (yet)`);
    }
    return h;
  }

  /** Throws RESOURCE_EXHAUSTED when the node holds too many requests. */
  private checkCapacity(): void {
    let size = 0;
    for (const h of this.hosted.values()) size += h.pending.size;
    if (size >= PENDING_REQUESTS_MAX) {
      throw new TesseraError('RESOURCE_EXHAUSTED', 'too many requests in flight on this node', {
        limit: PENDING_REQUESTS_MAX,
        actual: size,
      });
    }
  }

  /** Writes a founder's initial state: the meta range and every data range, all members voting. */
  private bootstrap(): void {
    const { log, state } = this.storage!;
    const voters = [...this.options.members.keys()].sort((a, b) => a - b);
    const descriptors = initialDescriptors(this.options.initialSplits ?? []);
    const pairs = initialMetaPairs([...this.members.values()], descriptors);
    Replica.bootstrap(log, state, META_RANGE, voters, pairs);
    for (const d of descriptors) Replica.bootstrap(log, state, d.id, voters);
    this.logger.info({ voters, ranges: descriptors.length }, 'cluster bootstrapped');
  }

  /** Creates (recovering from durable state, or empty) the replica of `range`, once. */
  private host(range: RangeId): Hosted {
    const existing = this.hosted.get(range);
    if (existing !== undefined) return existing;
    const { log, state } = this.storage!;
    const pending = new PendingRequests(PENDING_REQUESTS_MAX, REQUEST_DEADLINE_MS);
    const replica = Replica.recover(
      log,
      state,
      {
        range,
        snapshotEveryEntries: SNAPSHOT_EVERY_ENTRIES,
        raft: {
          ...DEFAULT_RAFT_CONFIG,
          id: this.options.id,
          preVote: true,
          checkQuorum: true,
          readMode: 'safe',
          // A busy event loop (a synchronous fsync, a large apply) must not
          // look like a dead leader: 500-1000 ms election timeout, 50 ms
          // heartbeats (etcd's defaults are 1000 ms and 100 ms).
          electionTimeoutTicks: ELECTION_TIMEOUT_TICKS,
          heartbeatIntervalTicks: HEARTBEAT_INTERVAL_TICKS,
          // Idle ranges send no heartbeats; node liveness wakes them when a leader's node dies.
          quiesce: true,
          rng: new SeededRng(randomInt(0, 2 ** 32)),
        },
      },
      {
        send: (m) => this.running?.transport.send(m.to, range, m),
        applied: (e, cmd, outcome) => this.onApplied(h, e, cmd, outcome),
        readState: (rs) => pending.onReadState(rs.context, rs.index),
      },
    );
    const h: Hosted = { range, replica, pending, seen: { term: 0, leader: NO_NODE } };
    this.hosted.set(range, h);
    return h;
  }

  /** Re-reads members and range descriptors from the local meta replica. */
  private refreshMeta(): void {
    this.metaChanged = false;
    const meta = this.hosted.get(META_RANGE);
    if (meta === undefined) return;
    const read = (span: { start: string; end: string }): string[] => readAll(meta.replica.sm, span);
    const members = read(MEMBER_KEYS).map(decodeMember);
    const descriptors = read(RANGE_KEYS).map(decodeDescriptor);
    if (descriptors.length > 0) this.rangeMap = new RangeMap(descriptors);
    if (members.length > 0) {
      this.members = new Map(members.map((m) => [m.id, m]));
      // A node being added may not be in the meta range yet: keep the configured address of self.
      if (!this.members.has(this.options.id)) {
        this.members.set(
          this.options.id,
          recordOf(this.options.id, this.options.members.get(this.options.id)!),
        );
      }
      this.running?.transport.setAddressBook(this.peerAddresses());
    }
  }

  private peerAddresses(): Map<NodeId, PeerAddress> {
    const book = new Map<NodeId, PeerAddress>();
    // Configured addresses first: a joining node reaches the members before it has the meta range.
    for (const [id, m] of this.options.members)
      book.set(id, { host: m.raftHost, port: m.raftPort });
    for (const m of this.members.values()) book.set(m.id, splitHostPort(m.raft));
    return book;
  }

  private live(): void {
    if (this.running === null || this.stopped) {
      throw new TesseraError('UNAVAILABLE', 'the node is starting or stopping');
    }
  }

  private refusal(code: string, leaderHint: NodeId, range: RangeId): TesseraError {
    switch (code) {
      case 'NOT_LEADER':
        return new TesseraError('NOT_LEADER', undefined, { leaderHint, range });
      case 'PROPOSAL_DROPPED':
      case 'RESOURCE_EXHAUSTED':
      case 'CONF_CHANGE_IN_PROGRESS':
      case 'INVALID_ARGUMENT':
        return new TesseraError(code, undefined, { leaderHint, range });
      default:
        return new TesseraError('INTERNAL', `unexpected refusal ${code}`);
    }
  }

  private onPeerMessage(range: RangeId, msg: Message): void {
    if (this.running === null || this.stopped) return;
    let h = this.hosted.get(range);
    if (h === undefined) {
      // A leader reaching a replica this node does not have yet: this node
      // was added to the range. The empty replica learns everything,
      // configuration included, from the leader's snapshot.
      if (!createsReplica(msg) || this.hosted.size >= RANGES_PER_NODE_MAX) return;
      this.logger.info({ range, from: msg.from }, 'creating a replica for a new range');
      h = this.host(range);
    }
    h.replica.raft.step(msg);
    this.schedulePump();
  }

  private onApplied(
    h: Hosted,
    e: Entry,
    cmd: KvCommand | null,
    outcome: ApplyOutcome | null,
  ): void {
    h.pending.onSlotApplied(e.index, e.term);
    if (h.range === META_RANGE) this.metaChanged = true;
    if (e.type === 'conf-change')
      h.pending.resolveWrite(confSession(e.index, e.term), { ok: true });
    if (cmd === null || outcome === null) return;
    const session = `${cmd.client}:${cmd.seq}`;
    if (outcome.kind === 'stale') {
      h.pending.rejectWrite(
        session,
        new TesseraError('INVALID_ARGUMENT', 'stale sequence number for this client session'),
      );
    } else {
      h.pending.resolveWrite(session, outcome.result);
    }
  }

  private tick(): void {
    if (this.running === null || this.stopped) return;
    this.liveness.tick();
    if (++this.gcTicks >= GC_INTERVAL_MS / TICK_MS) {
      this.gcTicks = 0;
      this.collectGarbage();
    }
    for (const h of this.hosted.values()) {
      h.replica.wakeIfLeaderDown(this.liveness);
      h.replica.raft.tick();
    }
    this.pump();
  }

  /**
   * For each range of a table that this node leads: if a local dry run
   * finds garbage from the cursor of that table in that range on, proposes
   * one bounded `gc` command (one in flight per table and range) and moves
   * the cursor to where it stopped. A range's replicas hold only the rows
   * routed to it, so each range collects its own.
   */
  private collectGarbage(): void {
    const meta = this.hosted.get(META_RANGE);
    if (meta === undefined) return;
    for (const raw of readAll(meta.replica.sm, TABLE_KEYS)) {
      const record = JSON.parse(raw) as TableRecord;
      const schema = parseTableSchema(record.schema);
      for (const d of this.rangeMap.ranges) {
        if (rowSpanOf(schema.name, d.start, d.end) === null) continue;
        const h = this.hosted.get(d.id);
        if (h !== undefined && h.replica.raft.status().role === 'leader') {
          this.collectGarbageIn(h, record.id, schema);
        }
      }
    }
  }

  private collectGarbageIn(h: Hosted, id: number, schema: TableSchema): void {
    const cursor = `${id}:${h.range}`;
    if (this.gcInFlight.has(cursor)) return;
    const start = this.gcCursor.get(cursor) ?? new Uint8Array(0);
    const dry = garbageIn(h.replica.sm.tableView(id), start, schema, Date.now(), GC_BUDGET_DEFAULT);
    if (dry.removable === 0) {
      if (dry.next === null) this.gcCursor.delete(cursor);
      else this.gcCursor.set(cursor, dry.next);
      return;
    }
    const table: TableWrite = {
      tableId: id,
      options: {
        maxVersions: schema.maxVersions,
        ttlSeconds: schema.ttlSeconds,
        maxVersionOffsetSeconds: schema.maxVersionOffsetSeconds,
      },
      rowKey: Buffer.from(start).toString('base64'),
      kind: 'gc',
      budget: GC_BUDGET_DEFAULT,
    };
    this.gcInFlight.add(cursor);
    this.writeTo(h, { op: 'table', key: '', value: null, expect: null, table }, null)
      .then((r) => {
        this.metrics.gcRemoved(r.gc?.removed ?? 0);
        const next = r.gc?.next ?? null;
        if (next === null) this.gcCursor.delete(cursor);
        else this.gcCursor.set(cursor, new Uint8Array(Buffer.from(next, 'base64')));
      })
      .catch(() => {
        // Lost leadership or timed out: the next round tries again.
      })
      .finally(() => this.gcInFlight.delete(cursor));
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * Runs the Readies of every hosted range to completion: stage them all,
   * one log sync for all (group commit across ranges), then send, apply
   * and advance each; then serves reads that became safe.
   */
  private pump(): void {
    const r = this.running;
    if (r === null || this.stopped) return;
    for (;;) {
      const prepared: [Hosted, Ready][] = [];
      let needsSync = false;
      for (const h of this.hosted.values()) {
        const p = h.replica.prepare();
        if (p === null) continue;
        prepared.push([h, p.ready]);
        needsSync ||= p.needsSync;
      }
      if (prepared.length === 0) break;
      if (needsSync) {
        const started = performance.now();
        r.log.sync();
        this.metrics.logSyncDone((performance.now() - started) / 1000);
      }
      for (const [h, rd] of prepared) h.replica.finish(rd);
    }
    for (const h of this.hosted.values()) {
      h.pending.serveReads(h.replica.raft.log.applied);
      const st = h.replica.raft.status();
      if (st.term !== h.seen.term || st.leader !== h.seen.leader) {
        if (h.pending.size > 0) {
          h.pending.rejectReads(
            new TesseraError('UNAVAILABLE', `range ${h.range}: the leader changed; retry the read`),
          );
        }
        h.seen = { term: st.term, leader: st.leader };
      }
    }
    if (this.metaChanged) this.refreshMeta();
  }
}

/** How often a leader looks for table garbage to collect, in ms. */
export const GC_INTERVAL_MS = 2_000;
/** Rows in one batchWriteRow or batchGetRow request. */
export const BATCH_ROWS_MAX = 200;

/** One item's outcome in a batch: a write's or read's result, or its error. */
type BatchResult =
  | { ok: true; increments?: Record<string, unknown> }
  | { row: Record<string, unknown> | null }
  | { error: { code: string; message: string } };

/** The increments of an update result as `{column: new value}`. */
function incrementsOf(r: KvResult): Record<string, unknown> {
  return Object.fromEntries((r.increments ?? []).map((c) => [c.column, c.value]));
}

/** Bytes of rows per table scan page. */
const ROW_PAGE_BYTES_MAX = 4 << 20;

/** An exactly-once client session and the request's number in it. */
type Session = { client: number; seq: number };

/** Every value of the meta range's keys in `span`. */
function readAll(sm: KvStateMachine, span: { start: string; end: string }): string[] {
  const values: string[] = [];
  let from: string | null = span.start;
  while (from !== null) {
    const page = sm.scan(from, span.end, 1000, 4 << 20);
    for (const [, v] of page.pairs) values.push(v);
    from = page.next;
  }
  return values;
}

/** Messages only a range's leader sends: they may create a replica on a new member. */
function createsReplica(msg: Message): boolean {
  return msg.type === 'app' || msg.type === 'heartbeat' || msg.type === 'snap';
}

/** The pending-request key of a membership change proposed at `index` in `t`. */
function confSession(index: number, t: number): string {
  return `conf:${index}:${t}`;
}

function recordOf(id: NodeId, m: MemberAddress): MemberRecord {
  return { id, raft: `${m.raftHost}:${m.raftPort}`, http: `${m.httpHost}:${m.httpPort}` };
}

function splitHostPort(address: string): PeerAddress {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
