/**
 * One Tessera node process of a static cluster: it hosts range 1 (the whole
 * key space) as one Raft group whose voters are all members. It owns the
 * real I/O around the shared replica driver: the log engine and the LMDB
 * state engine on disk, the TCP peer transport, a 10 ms tick timer and the
 * HTTP API (http-api.ts), which reaches the replica through the
 * {@link KvService} methods below.
 *
 * Durability and group commit: every Ready's log writes are synced before
 * its messages go out and its committed entries apply (replica.ts). Work
 * that arrives together (HTTP requests, peer messages) schedules one pump
 * with setImmediate, so its entries share a single fsync.
 *
 * Failure: an I/O error of the storage (a failed fsync) is thrown from the
 * pump and crashes the process: after it nothing is known about what is
 * durable, and recovery on restart sorts it out (fail-stop).
 */
import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { TesseraError } from '../core/errors.ts';
import type { NodeId, RangeId } from '../core/ids.ts';
import { NO_NODE, rangeId } from '../core/ids.ts';
import { SeededRng } from '../core/rng.ts';
import type { KvCommand, KvResult } from '../kv/command.ts';
import { encodeCommand } from '../kv/command.ts';
import type { ApplyOutcome } from '../kv/state-machine.ts';
import { DEFAULT_RAFT_CONFIG } from '../raft/raft.ts';
import type { Entry, Message } from '../raft/types.ts';
import { Replica } from '../server/replica.ts';
import { startGrpcServer, type GrpcServerHandle } from '../api/grpc-server.ts';
import { LmdbStateEngine } from '../storage/engine/lmdb-state-engine.ts';
import { LogEngine } from '../storage/wal/log-engine.ts';
import { TcpTransport, type PeerAddress } from '../transport/tcp-transport.ts';
import { NodeFileSystem } from './fs.ts';
import { buildHttpApi, type KvService, type NodeStatus, type WriteOp } from '../api/http-api.ts';
import { PendingRequests } from './pending-requests.ts';
import { NodeMetrics } from './metrics.ts';
import type { KvPage, KvStateMachine } from '../kv/state-machine.ts';
import { SESSIONLESS } from '../kv/state-machine.ts';

/** The one range every node hosts: the whole key space. */
export const RANGE: RangeId = rangeId(1);
/** Raft tick period, in milliseconds (election timeout = 10..20 ticks). */
export const TICK_MS = 10;
/** Client requests in flight on one node; beyond this new ones get RESOURCE_EXHAUSTED. */
export const PENDING_REQUESTS_MAX = 1024;
/** How long a write or linearizable read waits before TIMEOUT / OUTCOME_UNKNOWN, in ms. */
export const REQUEST_DEADLINE_MS = 5_000;
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
  /** Every voter of the static cluster, this node included. */
  readonly members: ReadonlyMap<NodeId, MemberAddress>;
  /** Defaults to a pino logger on stderr. */
  readonly logger?: Logger;
  /** When set, also serve the gRPC API (src/api/grpc-server.ts) on httpHost:grpcPort. */
  readonly grpcPort?: number;
}

/** A running node: storage, replica, transport, timers and HTTP, owned together. */
interface Running {
  readonly log: LogEngine;
  readonly state: LmdbStateEngine;
  readonly replica: Replica;
  readonly transport: TcpTransport;
  readonly http: FastifyInstance;
  readonly grpc: GrpcServerHandle | null;
  readonly ticker: NodeJS.Timeout;
}

/** One node process hosting range 1 of a static cluster. */
export class TesseraServer implements KvService {
  private readonly logger: Logger;
  private readonly pending = new PendingRequests(PENDING_REQUESTS_MAX, REQUEST_DEADLINE_MS);
  /** Distinguishes this process's read contexts from an earlier life's. */
  private readonly bootNonce = randomInt(0, 2 ** 32);
  private readCounter = 0;
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
  }

  /**
   * Opens (bootstrapping on first start) the storage, recovers the replica,
   * then listens for peers and HTTP clients. Resolves once both listen.
   */
  async start(): Promise<void> {
    const { id, dir, members } = this.options;
    const fs = new NodeFileSystem();
    fs.mkdirp(dir);
    const log = LogEngine.open(fs, `${dir}/wal`);
    const state = LmdbStateEngine.open(`${dir}/state`);
    if (state.applied(RANGE) === null) {
      Replica.bootstrap(
        log,
        state,
        RANGE,
        [...members.keys()].sort((a, b) => a - b),
      );
    }
    const replica = this.recover(log, state);
    const self = members.get(id)!;
    const transport = new TcpTransport({
      nodeId: id,
      clusterId: this.options.clusterId,
      onMessage: (range, msg) => this.onPeerMessage(range, msg),
      logger: this.logger,
      addresses: peerAddresses(members),
    });
    await transport.listen(self.raftHost, self.raftPort);
    const http = buildHttpApi(this, this.metrics);
    await http.listen({ host: self.httpHost, port: self.httpPort });
    const { grpcPort } = this.options;
    const grpc =
      grpcPort === undefined
        ? null
        : await startGrpcServer(this, self.httpHost, grpcPort, { logger: this.logger });
    const ticker = setInterval(() => this.tick(), TICK_MS);
    this.running = { log, state, replica, transport, http, grpc, ticker };
    this.logger.info({ id, dir, applied: state.applied(RANGE)?.index ?? 0 }, 'node started');
    this.pump();
  }

  /** Stops timers, HTTP and the transport, fails requests in flight, closes storage. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const r = this.running;
    if (r === null) return;
    clearInterval(r.ticker);
    this.pending.rejectAll(new TesseraError('UNAVAILABLE', 'the node is stopping'));
    await r.grpc?.close();
    await r.http.close();
    await r.transport.close();
    r.log.close();
    r.state.close();
    this.logger.info({ id: this.options.id }, 'node stopped');
  }

  /** {@inheritDoc KvService.write} */
  async write(op: WriteOp, session: { client: number; seq: number } | null): Promise<KvResult> {
    const replica = this.live();
    this.pending.checkCapacity();
    // Without a session the command is applied without exactly-once bookkeeping;
    // the random number only matches the answer to this request.
    const s = session ?? { client: SESSIONLESS, seq: randomInt(1, SERVER_SESSION_MAX) };
    const cmd: KvCommand = { ...op, client: s.client, seq: s.seq, at: Date.now() };
    const r = replica.raft.propose(encodeCommand(cmd));
    if (!r.ok) throw this.refusal(r.code, r.leaderHint);
    const done = this.pending.addWrite(`${s.client}:${s.seq}`, r.index, r.term);
    this.schedulePump();
    return done;
  }

  /** {@inheritDoc KvService.read} */
  async read(key: string, linearizable: boolean): Promise<string | null> {
    return this.readState(linearizable, (sm) => sm.get(key));
  }

  /** {@inheritDoc KvService.scan} */
  async scan(
    start: string,
    end: string | null,
    limit: number,
    bytesMax: number,
    linearizable: boolean,
  ): Promise<KvPage> {
    return this.readState(linearizable, (sm) => sm.scan(start, end, limit, bytesMax));
  }

  /** Runs `serve` on the state: now (serializable) or once a ReadIndex round confirms it. */
  private async readState<T>(linearizable: boolean, serve: (sm: KvStateMachine) => T): Promise<T> {
    const replica = this.live();
    if (!linearizable) return serve(replica.sm);
    this.pending.checkCapacity();
    const context = `${this.options.id}.${this.bootNonce}.${++this.readCounter}`;
    const r = replica.raft.readIndex(context);
    if (!r.ok) throw this.refusal(r.code, 'leaderHint' in r ? r.leaderHint : NO_NODE);
    const done = this.pending.addRead(context, () => serve(this.live().sm));
    this.schedulePump();
    return done;
  }

  /** {@inheritDoc KvService.status} */
  status(): NodeStatus {
    const st = this.live().raft.status();
    return {
      id: this.options.id,
      pid: process.pid,
      role: st.role,
      term: st.term,
      leader: st.leader,
      commit: st.commit,
      applied: st.applied,
      lastIndex: st.lastIndex,
      members: [...this.options.members].map(([id, m]) => ({
        id,
        raft: `${m.raftHost}:${m.raftPort}`,
        http: `${m.httpHost}:${m.httpPort}`,
      })),
    };
  }

  /** {@inheritDoc KvService.httpAddressOf} */
  httpAddressOf(id: NodeId): string | null {
    const m = this.options.members.get(id);
    return m === undefined ? null : `${m.httpHost}:${m.httpPort}`;
  }

  private recover(log: LogEngine, state: LmdbStateEngine): Replica {
    return Replica.recover(
      log,
      state,
      {
        range: RANGE,
        snapshotEveryEntries: SNAPSHOT_EVERY_ENTRIES,
        raft: {
          ...DEFAULT_RAFT_CONFIG,
          id: this.options.id,
          preVote: true,
          checkQuorum: true,
          readMode: 'safe',
          rng: new SeededRng(randomInt(0, 2 ** 32)),
        },
      },
      {
        send: (m) => this.running?.transport.send(m.to, RANGE, m),
        applied: (e, cmd, outcome) => this.onApplied(e, cmd, outcome),
        readState: (rs) => this.pending.onReadState(rs.context, rs.index),
      },
    );
  }

  private live(): Replica {
    if (this.running === null || this.stopped) {
      throw new TesseraError('UNAVAILABLE', 'the node is starting or stopping');
    }
    return this.running.replica;
  }

  private refusal(code: string, leaderHint: NodeId): TesseraError {
    switch (code) {
      case 'NOT_LEADER':
        return new TesseraError('NOT_LEADER', undefined, { leaderHint });
      case 'PROPOSAL_DROPPED':
      case 'RESOURCE_EXHAUSTED':
      case 'CONF_CHANGE_IN_PROGRESS':
      case 'INVALID_ARGUMENT':
        return new TesseraError(code, undefined, { leaderHint });
      default:
        return new TesseraError('INTERNAL', `unexpected refusal ${code}`);
    }
  }

  private onPeerMessage(range: RangeId, msg: Message): void {
    if (range !== RANGE || this.running === null || this.stopped) return;
    this.running.replica.raft.step(msg);
    this.schedulePump();
  }

  private onApplied(e: Entry, cmd: KvCommand | null, outcome: ApplyOutcome | null): void {
    this.pending.onSlotApplied(e.index, e.term);
    if (cmd === null || outcome === null) return;
    const session = `${cmd.client}:${cmd.seq}`;
    if (outcome.kind === 'stale') {
      this.pending.rejectWrite(
        session,
        new TesseraError('INVALID_ARGUMENT', 'stale sequence number for this client session'),
      );
    } else {
      this.pending.resolveWrite(session, outcome.result);
    }
  }

  private tick(): void {
    if (this.running === null || this.stopped) return;
    this.running.replica.raft.tick();
    this.pump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Runs Readies to completion: stage, one sync, send/apply/advance; then serves reads. */
  private pump(): void {
    const r = this.running;
    if (r === null || this.stopped) return;
    for (;;) {
      const p = r.replica.prepare();
      if (p === null) break;
      if (p.needsSync) {
        const started = performance.now();
        r.log.sync();
        this.metrics.logSyncDone((performance.now() - started) / 1000);
      }
      r.replica.finish(p.ready);
    }
    this.pending.serveReads(r.replica.raft.log.applied);
  }
}

function peerAddresses(members: ReadonlyMap<NodeId, MemberAddress>): Map<NodeId, PeerAddress> {
  return new Map([...members].map(([id, m]) => [id, { host: m.raftHost, port: m.raftPort }]));
}
