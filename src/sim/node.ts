/**
 * One simulated node: the real Raft core and key-value state machine, driven
 * the way the production replica driver drives them (Ready -> persist -> send
 * -> apply -> advance), on virtual time, with a simulated disk whose writes
 * complete after a latency and are lost if the node crashes first.
 */
import type { NodeId } from '../core/ids.ts';
import type { SeededRng } from '../core/rng.ts';
import { decodeCommand, encodeCommand } from '../kv/command.ts';
import { KvStateMachine } from '../kv/state-machine.ts';
import type { CanaryName } from '../raft/canaries.ts';
import type { ProposeResult } from '../raft/raft.ts';
import { DEFAULT_RAFT_CONFIG, Raft } from '../raft/raft.ts';
import type { ConfChange, Message, Ready } from '../raft/types.ts';
import type { EventQueue } from './event-queue.ts';
import type { RaftInvariants } from './invariants.ts';
import type { FaultMix } from './options.ts';
import type { ClientRequest, ClientResponse } from './protocol.ts';
import { SimStorage } from './storage.ts';

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
  readonly storage = new SimStorage();
  up = false;
  paused = false;
  /** Bumped at every crash: events of an earlier life are ignored. */
  incarnation = 0;
  raft!: Raft;
  private sm = new KvStateMachine();
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

  constructor(
    readonly id: NodeId,
    private readonly host: NodeHost,
  ) {}

  /** Starts (or restarts) the node from its durable state only. */
  start(): void {
    const h = this.host;
    this.up = true;
    this.paused = false;
    this.busy = false;
    this.deferred = [];
    this.missedTicks = 0;
    this.pendingWrites.clear();
    this.pendingReads.clear();
    const s = this.storage;
    this.raft = new Raft(
      {
        ...DEFAULT_RAFT_CONFIG,
        id: this.id,
        rng: h.rng.fork(),
        readMode: h.mix.leaseReads ? 'lease' : 'safe',
        leaseMarginTicks: 3,
        inflightMsgsMax: 16,
        msgBytesMax: h.mix.msgBytesMax,
        bugs: h.bugs,
      },
      {
        hardState: s.hardState,
        snapshot: s.snapshot,
        entries: s.entries,
      },
    );
    this.sm = s.snapshot === null ? new KvStateMachine() : KvStateMachine.restore(s.snapshot.data);
    this.lastRole = '';
    this.observe();
    this.scheduleTick(this.incarnation);
    this.pump();
  }

  /** Kills the process: everything not yet durable is lost. */
  crash(): void {
    this.up = false;
    this.paused = false;
    this.incarnation++;
    this.deferred = [];
    this.pendingWrites.clear();
    this.pendingReads.clear();
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
    for (let i = 0; i < ticks; i++) this.raft.tick();
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
        this.raft.tick();
        this.observe();
        this.pump();
      }
      this.scheduleTick(incarnation);
    });
  }

  /** Runs `work` now, or after resume if paused; drops it if the node is down. */
  private whenRunning(work: () => void): void {
    if (!this.up) return;
    if (this.paused) this.deferred.push(work);
    else work();
  }

  deliver(m: Message): void {
    this.whenRunning(() => {
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
      const data = encodeCommand({
        client: req.client,
        seq: req.seq,
        op: req.op,
        key: req.key,
        value: req.value,
        expect: req.expect,
      });
      const r = this.raft.propose(data);
      if (!r.ok) {
        refuse(r.code, r.leaderHint);
        return;
      }
      this.pendingWrites.set(`${req.client}:${req.seq}`, {
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
    while (this.up && !this.paused && !this.busy && this.raft.hasReady()) {
      const rd = this.raft.ready();
      this.traceSoftState(rd);
      h.invariants.onAppend(this.raft, rd.entries);
      const earlySend = h.bugs.has('ack-before-persist');
      if (earlySend) for (const m of rd.messages) h.sendPeer(m);
      const needsDisk = rd.entries.length > 0 || rd.hardState !== null || rd.snapshot !== null;
      if (!needsDisk) {
        this.finish(rd, earlySend);
        continue;
      }
      this.busy = true;
      const incarnation = this.incarnation;
      const latency = h.mix.persistMinMs + h.rng.next() * (h.mix.persistMaxMs - h.mix.persistMinMs);
      h.queue.after(latency, () => {
        if (incarnation !== this.incarnation) return; // Crashed: the write never completed.
        this.whenRunning(() => {
          this.persist(rd);
          this.finish(rd, earlySend);
          this.busy = false;
          this.pump();
        });
      });
      return;
    }
  }

  /** The disk write completes: the Ready's state is now durable (Ready step 1). */
  private persist(rd: Ready): void {
    const s = this.storage;
    if (rd.snapshot !== null) s.applySnapshot(rd.snapshot);
    s.append(rd.entries);
    if (rd.hardState !== null) s.setHardState(rd.hardState);
  }

  /** Ready steps 2-4: send, apply, advance; then answer clients and maybe compact. */
  private finish(rd: Ready, alreadySent: boolean): void {
    const h = this.host;
    if (!alreadySent) for (const m of rd.messages) h.sendPeer(m);
    if (rd.snapshot !== null) {
      this.sm = KvStateMachine.restore(rd.snapshot.data);
      h.trace(`n${this.id} restored snapshot at index ${rd.snapshot.meta.index}`);
    }
    for (const e of rd.committedEntries) {
      h.invariants.onApply(this.id, e);
      if (e.type === 'conf-change') {
        const conf = this.raft.applyConfChange(e.confChange!);
        h.trace(
          `n${this.id} applied conf change at ${e.index}: voters=[${conf.voters}] outgoing=[${conf.votersOutgoing}] learners=[${conf.learners}]`,
        );
        continue;
      }
      if (e.data.length === 0) continue;
      const cmd = decodeCommand(e.data);
      const outcome = this.sm.apply(cmd);
      const key = `${cmd.client}:${cmd.seq}`;
      const pending = this.pendingWrites.get(key);
      if (pending !== undefined) {
        this.pendingWrites.delete(key);
        if (outcome.kind !== 'stale') {
          h.reply(pending.client, this.id, {
            attempt: pending.attempt,
            ok: true,
            swapped: outcome.result.ok,
            output: null,
          });
        }
      }
    }
    this.raft.advance(rd);
    for (const rs of rd.readStates) {
      const read = this.pendingReads.get(rs.context);
      if (read !== undefined) read.index = rs.index;
    }
    this.serveReads();
    this.maybeCompact();
    this.observe();
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
        output: this.sm.get(read.key),
      });
    }
  }

  private maybeCompact(): void {
    const log = this.raft.log;
    const since = log.applied - (log.snapshot?.meta.index ?? 0);
    if (since < this.host.mix.snapshotEveryEntries || log.pendingSnapshot !== null) return;
    if (this.storage.lastIndex() < log.applied) return;
    const snapshot = this.raft.createSnapshot(this.sm.snapshot());
    this.storage.compact(snapshot);
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
