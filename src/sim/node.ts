/**
 * One simulated node: the shared replica driver (the real Raft core and
 * key-value state machine) over the real log engine on a simulated disk and
 * an in-memory state engine, on virtual time. The disk's writes complete
 * after a latency; a crash loses whatever was not fsynced (with disk
 * faults, a torn prefix of it may remain).
 */
import { assert } from '../core/assert.ts';
import type { NodeId } from '../core/ids.ts';
import { rangeId } from '../core/ids.ts';
import { TesseraError } from '../core/errors.ts';
import type { SeededRng } from '../core/rng.ts';
import type { KvCommand } from '../kv/command.ts';
import { encodeCommand } from '../kv/command.ts';
import type { ApplyOutcome } from '../kv/state-machine.ts';
import type { SessionStats } from '../kv/session-table.ts';
import type { TableOptions } from '../table/row-store.ts';
import { DEFAULT_SESSION_LIMITS } from '../kv/session-table.ts';
import type { CanaryName } from '../raft/canaries.ts';
import type { ProposeResult, Raft } from '../raft/raft.ts';
import { DEFAULT_RAFT_CONFIG } from '../raft/raft.ts';
import type { ConfChange, Entry, Message, Ready } from '../raft/types.ts';
import { NodeLiveness } from '../server/node-liveness.ts';
import { Replica } from '../server/replica.ts';
import { MemoryStateEngine } from '../storage/memory-state-engine.ts';
import { LogEngine } from '../storage/wal/log-engine.ts';
import { CrashPointFs, SimCrash } from './crash-point-fs.ts';
import { SimDisk } from './disk.ts';
import type { EventQueue } from './event-queue.ts';
import type { RaftInvariants } from './invariants.ts';
import type { FaultMix } from './options.ts';
import type { ClientRequest, ClientResponse } from './protocol.ts';
import {
  isRowKey,
  readRowValue,
  rowCommand,
  rowResultExpected,
  simTableOptions,
} from './table-workload.ts';

/** The one range every simulated node hosts. */
const RANGE = rangeId(1);
const WAL_DIR = '/wal';
/** A node that refused to start (a read fault during recovery) tries again after this. */
const RESTART_RETRY_MS = 20;

/** What a node needs from the simulation around it. */
export interface NodeHost {
  readonly queue: EventQueue;
  readonly rng: SeededRng;
  readonly mix: FaultMix;
  readonly bugs: ReadonlySet<CanaryName>;
  readonly invariants: RaftInvariants;
  /** Virtual milliseconds per tick. */
  readonly tickMs: number;
  sendPeer(m: Message): void;
  /** Sends a node-level liveness ping from `from` to every other node (quiescence runs). */
  ping(from: NodeId): void;
  /** One tick of a live node; `quiet` tells whether its Raft core is quiet after it. */
  ticked(quiet: boolean): void;
  /** Restarts a node that crashed by itself (during an fsync) after a downtime. */
  scheduleRestart(node: SimNode): void;
  reply(client: number, from: NodeId, resp: ClientResponse): void;
  trace(line: string): void;
}

interface PendingRead {
  readonly client: number;
  readonly attempt: number;
  readonly key: string;
  /** When it arrived (virtual ms). */
  readonly at: number;
  index: number;
}

/** A write waiting to apply, by "session:seq". */
interface PendingWrite {
  readonly client: number;
  readonly attempt: number;
  readonly at: number;
}

/** Pending client requests kept per node; beyond this new ones are refused. */
const PENDING_REQUESTS_MAX = 1024;
/** Requests older than this are forgotten (their clients have given up). */
const PENDING_EXPIRY_MS = 5000;

export class SimNode {
  /** The node's disk: survives crashes, keeps only what was made durable. */
  readonly disk: SimDisk;
  /** The state engine: each commit is atomic and durable (as LMDB's are). */
  readonly state = new MemoryStateEngine();
  /** The disk as the log engine sees it, with a crash point that can be armed. */
  private readonly fs: CrashPointFs;
  private log: LogEngine | null = null;
  private replica!: Replica;
  up = false;
  paused = false;
  /** Bumped at every crash: events of an earlier life are ignored. */
  incarnation = 0;
  private busy = false;
  private deferred: (() => void)[] = [];
  private missedTicks = 0;
  /** This node's clock rate relative to true time (drift), e.g. 1.03. */
  clockRate = 1;
  /** A one-off shift of the next tick (clock jump), in ms. */
  private nextTickShiftMs = 0;
  private readonly pendingWrites = new Map<string, PendingWrite>();
  private readonly pendingReads = new Map<string, PendingRead>();
  private readCounter = 0;
  private lastRole = '';
  private lastLeader = 0;
  /** Which peers this node heard from recently (volatile: a restart forgets). Quiescence runs only. */
  private liveness: NodeLiveness | null = null;
  private ticksSincePing = 0;

  constructor(
    readonly id: NodeId,
    private readonly host: NodeHost,
  ) {
    this.disk = new SimDisk(host.rng.fork(), {
      tornWrites: host.mix.diskFaults,
      readBitFlipRate: host.mix.diskFaults ? host.mix.readBitFlipRate : 0,
    });
    this.fs = new CrashPointFs(this.disk);
  }

  /** Writes the founding state of a new cluster onto this node's disk. */
  bootstrap(voters: readonly NodeId[]): void {
    const log = LogEngine.open(this.fs, WAL_DIR, {
      segmentBytesMax: this.host.mix.segmentBytesMax,
    });
    Replica.bootstrap(log, this.state, RANGE, voters);
    log.close();
  }

  /** Starts (or restarts) the node from its durable state only. */
  start(): void {
    const h = this.host;
    this.paused = false;
    this.busy = false;
    this.deferred = [];
    this.missedTicks = 0;
    this.pendingWrites.clear();
    this.pendingReads.clear();
    try {
      this.log = LogEngine.open(this.fs, WAL_DIR, {
        segmentBytesMax: h.mix.segmentBytesMax,
        ackBeforeFsync: h.bugs.has('ack-before-fsync'),
      });
      this.replica = Replica.recover(
        this.log,
        this.state,
        {
          range: RANGE,
          snapshotEveryEntries: h.mix.snapshotEveryEntries,
          sessions: { ...DEFAULT_SESSION_LIMITS, idleMs: h.mix.sessionIdleMs },
          raft: {
            ...DEFAULT_RAFT_CONFIG,
            id: this.id,
            rng: h.rng.fork(),
            readMode: h.mix.leaseReads ? 'lease' : 'safe',
            leaseMarginTicks: 3,
            inflightMsgsMax: 16,
            msgBytesMax: h.mix.msgBytesMax,
            quiesce: h.mix.quiesce,
            bugs: h.bugs,
          },
        },
        {
          send: (m) => h.sendPeer(m),
          applied: (e, cmd, outcome) => this.onApplied(e, cmd, outcome),
          readState: (rs) => {
            const read = this.pendingReads.get(rs.context);
            if (read !== undefined) read.index = rs.index;
          },
        },
      );
    } catch (e) {
      if (e instanceof SimCrash) {
        // The armed crash point hit an fsync of recovery itself.
        h.trace(`n${this.id} crashed during recovery`);
        this.crash();
        h.scheduleRestart(this);
        return;
      }
      // A read fault during recovery is detected by the checksums: the node
      // refuses to start and is started again (reads are retried).
      if (!(e instanceof TesseraError && e.code === 'CORRUPTION')) throw e;
      this.log = null;
      this.host.trace(`n${this.id} refused to start: ${e.message}`);
      const incarnation = this.incarnation;
      h.queue.after(RESTART_RETRY_MS, () => {
        if (!this.up && incarnation === this.incarnation) this.start();
      });
      return;
    }
    this.up = true;
    this.lastRole = '';
    this.liveness = h.mix.quiesce
      ? new NodeLiveness({ livenessTimeoutTicks: h.mix.livenessTimeoutTicks, peersMax: 64 })
      : null;
    this.ticksSincePing = 0;
    this.observe();
    this.scheduleTick(this.incarnation);
    this.pump();
  }

  /** The session table's counters of the node's state machine, or null while it is down. */
  sessionStats(): SessionStats | null {
    return this.up ? this.replica.sm.sessionStats() : null;
  }

  /** The node's Raft core (valid while it is up). */
  get raft(): Raft {
    return this.replica.raft;
  }

  /**
   * Kills the process: everything not yet durable is lost; the disk keeps
   * only what was fsynced (with disk faults, a torn prefix of the rest).
   */
  crash(): void {
    this.up = false;
    this.paused = false;
    this.incarnation++;
    this.deferred = [];
    this.pendingWrites.clear();
    this.pendingReads.clear();
    this.log = null;
    this.disk.crash();
  }

  /** The next log sync is interrupted by a crash after its write and before its fsync. */
  crashDuringNextSync(): void {
    this.fs.armCrashAtFsync(true);
  }

  /** Cancels an armed crash point (healing: no faults in the liveness phase). */
  disarmCrashPoint(): void {
    this.fs.armCrashAtFsync(false);
  }

  /** Stops the process (SIGSTOP): no ticks, no message handling, until resume. */
  pause(): void {
    this.paused = true;
  }

  /** Resumes a paused process: its clock catches up first, then queued work runs. */
  resume(): void {
    if (!this.up || !this.paused) return;
    this.paused = false;
    const ticks = this.missedTicks;
    this.missedTicks = 0;
    for (let i = 0; i < ticks; i++) this.tickOnce();
    this.observe();
    const work = this.deferred;
    this.deferred = [];
    for (const w of work) {
      if (!this.up || this.paused) break;
      w();
    }
    this.pump();
  }

  /** A clock jump: the next tick fires earlier or later by `shiftMs`. */
  jumpClock(shiftMs: number): void {
    this.nextTickShiftMs = shiftMs;
  }

  private scheduleTick(incarnation: number): void {
    const h = this.host;
    const delay = h.tickMs * this.clockRate + this.nextTickShiftMs;
    this.nextTickShiftMs = 0;
    h.queue.after(delay, () => {
      if (!this.up || incarnation !== this.incarnation) return;
      if (this.paused) this.missedTicks++;
      else {
        this.tickOnce();
        this.observe();
        this.pump();
      }
      this.scheduleTick(incarnation);
    });
  }

  /**
   * One tick of the node: the Raft core's, then (quiescence runs) node
   * liveness: a ping to every peer every `pingIntervalTicks`, and a quiet
   * follower whose leader's node is down is woken.
   */
  private tickOnce(): void {
    const h = this.host;
    this.raft.tick();
    const liveness = this.liveness;
    if (liveness !== null) {
      liveness.tick();
      if (++this.ticksSincePing >= h.mix.pingIntervalTicks) {
        this.ticksSincePing = 0;
        h.ping(this.id);
      }
      for (const peer of liveness.newlyDown()) h.trace(`n${this.id} liveness: n${peer} is down`);
      const leader = this.raft.status().leader;
      if (this.replica.wakeIfLeaderDown(liveness)) {
        h.trace(`n${this.id} wakes: its leader n${leader} is down`);
      }
    }
    h.ticked(this.raft.status().quiet);
  }

  /** A liveness ping from `from` arrived. */
  onPing(from: NodeId): void {
    this.whenRunning(() => this.liveness?.heard(from));
  }

  /** Runs `work` now, or after resume if paused; drops it if the node is down. */
  private whenRunning(work: () => void): void {
    if (!this.up) return;
    if (this.paused) this.deferred.push(work);
    else work();
  }

  deliver(m: Message): void {
    this.whenRunning(() => {
      this.liveness?.heard(m.from);
      this.raft.step(m);
      this.observe();
      this.pump();
    });
  }

  handleClient(req: ClientRequest): void {
    this.whenRunning(() => this.serve(req));
  }

  /** An operator's membership change, proposed on this node. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    const r = this.raft.proposeConfChange(cc);
    this.observe();
    this.pump();
    return r;
  }

  private serve(req: ClientRequest): void {
    const h = this.host;
    const refuse = (code: string, leaderHint: NodeId): void =>
      h.reply(req.client, this.id, { attempt: req.attempt, ok: false, code, leaderHint });
    if (this.pendingWrites.size + this.pendingReads.size >= PENDING_REQUESTS_MAX / 2) {
      this.expirePending();
    }
    if (this.pendingWrites.size + this.pendingReads.size >= PENDING_REQUESTS_MAX) {
      refuse('RESOURCE_EXHAUSTED', this.raft.status().leader);
      return;
    }
    if (req.op === 'get') {
      const context = `${this.id}.${this.incarnation}.${++this.readCounter}`;
      const r = this.raft.readIndex(context);
      if (!r.ok) {
        refuse(r.code, r.leaderHint);
        return;
      }
      this.pendingReads.set(context, {
        client: req.client,
        attempt: req.attempt,
        key: req.key,
        at: h.queue.now,
        index: -1,
      });
    } else {
      const cmd: KvCommand = isRowKey(req.key)
        ? rowCommand(req.session, req.seq, req.op, req.key, req.value, req.expect, this.table())
        : {
            client: req.session,
            seq: req.seq,
            op: req.op,
            key: req.key,
            value: req.value,
            expect: req.expect,
          };
      // The proposer's clock: virtual time, whole ms (kv/session-table.ts).
      const data = encodeCommand({ ...cmd, at: Math.floor(h.queue.now) });
      const r = this.raft.propose(data);
      if (!r.ok) {
        refuse(r.code, r.leaderHint);
        return;
      }
      this.pendingWrites.set(`${req.session}:${req.seq}`, {
        client: req.client,
        attempt: req.attempt,
        at: h.queue.now,
      });
    }
    this.observe();
    this.pump();
  }

  private expirePending(): void {
    const cutoff = this.host.queue.now - PENDING_EXPIRY_MS;
    for (const [k, w] of this.pendingWrites) if (w.at < cutoff) this.pendingWrites.delete(k);
    for (const [k, r] of this.pendingReads) if (r.at < cutoff) this.pendingReads.delete(k);
  }

  /** Processes Readies until one needs the disk (then continues when the write completes). */
  private pump(): void {
    const h = this.host;
    while (this.up && !this.paused && !this.busy) {
      const p = this.replica.prepare();
      if (p === null) return;
      const rd = p.ready;
      this.traceSoftState(rd);
      if (rd.snapshot !== null)
        h.trace(`n${this.id} restored snapshot at index ${rd.snapshot.meta.index}`);
      h.invariants.onAppend(this.raft, rd.entries);
      if (!p.needsSync) {
        this.finish(rd);
        continue;
      }
      this.busy = true;
      const incarnation = this.incarnation;
      const latency = h.mix.diskFaults
        ? this.disk.latencyMs('fsync')
        : h.mix.persistMinMs + h.rng.next() * (h.mix.persistMaxMs - h.mix.persistMinMs);
      h.queue.after(latency, () => {
        if (incarnation !== this.incarnation) return; // Crashed: the write never completed.
        this.whenRunning(() => {
          try {
            this.log!.sync();
          } catch (e) {
            if (!(e instanceof SimCrash)) throw e;
            h.trace(`n${this.id} crashed during fsync`);
            this.crash();
            this.host.scheduleRestart(this);
            return;
          }
          this.busy = false;
          this.finish(rd);
          this.pump();
        });
      });
      return;
    }
  }

  /** Ready steps 2-4 (send, apply, advance), then answer clients. */
  private finish(rd: Ready): void {
    this.replica.finish(rd);
    this.serveReads();
    this.observe();
  }

  private onApplied(e: Entry, cmd: KvCommand | null, outcome: ApplyOutcome | null): void {
    const h = this.host;
    h.invariants.onApply(this.id, e);
    if (e.type === 'conf-change') {
      const conf = this.raft.status().conf;
      h.trace(
        `n${this.id} applied conf change at ${e.index}: voters=[${conf.voters}] outgoing=[${conf.votersOutgoing}] learners=[${conf.learners}]`,
      );
    }
    if (cmd === null || outcome === null) return;
    const table = cmd.table;
    if (table !== undefined && outcome.kind !== 'stale') {
      // The workload's row writes fail only by a failed condition (a cas that did not swap).
      assert(rowResultExpected(table, outcome.result), () => {
        const e = outcome.result.error;
        return `row write ${table.kind} failed: ${e?.code} ${e?.message}`;
      });
    }
    const key = `${cmd.client}:${cmd.seq}`;
    const pending = this.pendingWrites.get(key);
    if (pending === undefined) return;
    this.pendingWrites.delete(key);
    if (outcome.kind === 'stale') return;
    h.reply(pending.client, this.id, {
      attempt: pending.attempt,
      ok: true,
      swapped: outcome.result.ok,
      output: null,
    });
  }

  private serveReads(): void {
    const applied = this.raft.log.applied;
    for (const [ctx, read] of this.pendingReads) {
      if (read.index < 0 || read.index > applied) continue;
      this.pendingReads.delete(ctx);
      this.host.reply(read.client, this.id, {
        attempt: read.attempt,
        ok: true,
        swapped: true,
        output: isRowKey(read.key)
          ? readRowValue(this.replica.sm, read.key, this.table(), Math.floor(this.host.queue.now))
          : this.replica.sm.get(read.key),
      });
    }
  }

  /** The simulated table's options (fixed for the run). */
  private table(): TableOptions {
    return simTableOptions(this.host.mix.tableMaxVersions);
  }

  private observe(): void {
    this.host.invariants.observe(this.raft, this.incarnation);
  }

  private traceSoftState(rd: Ready): void {
    const ss = rd.softState;
    if (ss.role === this.lastRole && ss.leader === this.lastLeader) return;
    this.lastRole = ss.role;
    this.lastLeader = ss.leader;
    const st = this.raft.status();
    this.host.trace(
      `n${this.id} ${ss.role} term=${st.term} leader=${ss.leader} commit=${st.commit}`,
    );
  }
}
