/**
 * One deterministic simulated run: a cluster of real Raft nodes and clients in
 * one process on virtual time, a nemesis injecting the faults the seed picked,
 * then healing and checking that the cluster recovers.
 *
 * Phases (TigerBeetle VOPR style):
 * 1. safety: clients run operations while faults are injected; Raft
 *    invariants are checked after every step;
 * 2. liveness: every fault is healed; a leader must be elected and the
 *    remaining operations must complete within a bound;
 * 3. in runs with quiescence, quiet leader: the idle group must go quiet
 *    within a bound; then its leader crashes for good, and node liveness
 *    must wake the quiet followers so that a new leader is elected in time.
 * Finally the whole history is checked for linearizability, per key: in runs
 * with the table workload, each row of the simulated table is a key too
 * (src/sim/table-workload.ts).
 *
 * A run is a pure function of its options: the same seed replays exactly.
 */
import { AssertionError } from '../core/assert.ts';
import type { NodeId } from '../core/ids.ts';
import { nodeId } from '../core/ids.ts';
import { SeededRng } from '../core/rng.ts';
import type { KvOperation } from '../check/history.ts';
import { checkLinearizable } from '../check/linearizability.ts';
import type { ConfChange, ConfState, Message } from '../raft/types.ts';
import { SimClient } from './client.ts';
import { EventQueue } from './event-queue.ts';
import { RaftInvariants } from './invariants.ts';
import type { NodeHost } from './node.ts';
import { SimNode } from './node.ts';
import type { FaultMix, SimOptions } from './options.ts';
import { PAUSE_MAX_MS, pickFaultMix } from './options.ts';
import type { ClientRequest, ClientResponse } from './protocol.ts';
import { isRowKey, rowKeyName } from './table-workload.ts';

export interface SimResult {
  readonly seed: number;
  /** Operations that completed with a definite answer. */
  readonly ops: number;
  /** Operations whose outcome is unknown (timed out). */
  readonly unknown: number;
  readonly violations: readonly string[];
  readonly trace: readonly string[];
  readonly virtualMs: number;
  readonly events: number;
  readonly history: readonly KvOperation[];
  /** Sessions the state machine expired, most on any node at the end (replicas agree per index). */
  readonly sessionsExpired: number;
  /** Quiescence was on in this run. */
  readonly quiesce: boolean;
  /** Node ticks spent quiet, summed over nodes (0 without quiescence). */
  readonly quietTicks: number;
  /** The part of `quietTicks` spent in the safety phase (idle gaps under faults). */
  readonly safetyQuietTicks: number;
  /** Operations on rows of the simulated table, whatever their outcome (0 without tables). */
  readonly tableOps: number;
}

/** After healing: a leader within this bound, all remaining operations within the next. */
const LIVENESS_LEADER_MS = 5_000;
const LIVENESS_OPS_MS = 20_000;
/** Hard stop for the safety phase, virtual ms. */
const SAFETY_PHASE_MAX_MS = 60_000;
/** Hard stop on events per run (guards against a livelock in the simulator itself). */
const EVENTS_MAX = 5_000_000;
/** Operations reserved for the liveness phase. */
const LIVENESS_OPS = 20;
/** Quiet-leader phase: the idle group must go quiet within this bound, virtual ms. */
const QUIET_WAIT_MS = 5_000;
const TRACE_LINES_MAX = 20_000;
/** Operations per client session when a test forces the idle window on a seed that would not rotate. */
const FORCED_SESSION_OPS_MAX = 5;

type Partition = Set<string>;

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

class Simulation {
  private readonly queue = new EventQueue();
  private readonly rng: SeededRng;
  private readonly mix: FaultMix;
  private readonly invariants: RaftInvariants;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly clients: SimClient[] = [];
  private readonly history: KvOperation[] = [];
  private readonly traceLines: string[] = [];
  private readonly violations: string[] = [];
  private readonly keys: string[];
  /** History keys of the simulated table's rows (empty without the table workload). */
  private readonly rowKeys: string[];
  /** Directed links that drop everything: "from>to". */
  private blocked: Partition = new Set();
  /** Identifies the current partition, so that its scheduled heal does not end a later one. */
  private partitionGeneration = 0;
  private phase: 'safety' | 'liveness' | 'quiet-leader' = 'safety';
  /** Quiet-leader phase: when it began, and the leader crashed once the group was quiet. */
  private quietPhaseAt = -1;
  private crashedQuietLeader: SimNode | null = null;
  private crashedQuietLeaderAt = -1;
  private quietPhaseDone = false;
  private quietTicks = 0;
  private safetyQuietTicks = 0;
  private issued = 0;
  private definite = 0;
  private unknown = 0;
  /** Operations that definitely did not take effect (every attempt refused). */
  private failed = 0;
  private livenessOpsDone = 0;
  private nextNodeId: number;
  private attemptIds = 0;
  private healedAt = -1;
  /** When a leader was first seen after healing (-1: not yet). Liveness operations start then. */
  private leaderSeenAt = -1;

  constructor(private readonly opts: SimOptions) {
    if (opts.nodes < 3 || opts.nodes > 7) throw new Error('--nodes must be between 3 and 7');
    this.rng = new SeededRng(opts.seed);
    const mix = pickFaultMix(opts.faults, this.rng.fork());
    this.mix =
      opts.sessionIdleMs === undefined
        ? mix
        : {
            ...mix,
            sessionIdleMs: opts.sessionIdleMs,
            sessionOpsMax: mix.sessionOpsMax > 0 ? mix.sessionOpsMax : FORCED_SESSION_OPS_MAX,
          };
    this.invariants = new RaftInvariants(() => this.queue.now);
    this.keys = Array.from({ length: this.rng.int(2, 6) }, (_, i) => `k${i}`);
    this.rowKeys = Array.from({ length: this.mix.tableRows }, (_, i) => rowKeyName(i));
    this.nextNodeId = opts.nodes + 1;
  }

  run(): SimResult {
    const conf: ConfState = {
      voters: Array.from({ length: this.opts.nodes }, (_, i) => nodeId(i + 1)),
      votersOutgoing: [],
      learners: [],
    };
    this.trace(
      `seed=${this.opts.seed} nodes=${this.opts.nodes} faults=[${[...this.opts.faults]}] bugs=[${[...this.opts.bugs]}] mix=${JSON.stringify(this.mix)}`,
    );
    for (const id of conf.voters) {
      // Founders start from the bootstrap state; they are started below, together.
      this.addNode(id).bootstrap(conf.voters);
    }
    for (const node of this.nodes.values()) node.start();
    const clientCount = this.mix.clients;
    for (let c = 1; c <= clientCount; c++) {
      const client = new SimClient(c, this.clientHost());
      this.clients.push(client);
      this.queue.after(this.rng.int(0, 50), () => client.next());
    }
    if (Object.values(this.mix.weights).some((w) => w > 0)) this.scheduleNemesis();

    let events = 0;
    try {
      while (events < EVENTS_MAX && this.queue.step()) {
        events++;
        if (this.invariants.violations.length > 0) break;
        if (this.phase === 'safety' && this.shouldHeal()) this.heal();
        if (this.phase === 'liveness' && this.livenessDone()) {
          if (!this.mix.quiesce || !this.livenessPassed()) break;
          this.startQuietLeaderPhase();
        }
        if (this.phase === 'quiet-leader' && (this.quietPhaseDone || this.violations.length > 0))
          break;
      }
    } catch (e) {
      // Any exception escaping a node is a bug: the run is deterministic, so report and replay it.
      const what =
        e instanceof AssertionError ? 'assertion failed' : `unexpected ${(e as Error).name}`;
      this.violations.push(`t=${this.queue.now.toFixed(1)}ms ${what}: ${(e as Error).message}`);
    }
    this.violations.push(...this.invariants.violations);
    if (this.violations.length === 0) this.checkLiveness(events);
    if (this.violations.length === 0) this.checkHistory();
    return {
      seed: this.opts.seed,
      ops: this.definite,
      unknown: this.unknown,
      violations: this.violations,
      trace: this.traceLines,
      virtualMs: this.queue.now,
      events,
      history: this.history,
      sessionsExpired: Math.max(
        0,
        ...[...this.nodes.values()].map((n) => n.sessionStats()?.expiredTotal ?? 0),
      ),
      quiesce: this.mix.quiesce,
      quietTicks: this.quietTicks,
      safetyQuietTicks: this.safetyQuietTicks,
      tableOps: this.history.filter((o) => isRowKey(o.key)).length,
    };
  }

  // ---------------------------------------------------------------------------
  // Phases

  private shouldHeal(): boolean {
    const safetyOps = this.opts.ops - LIVENESS_OPS;
    const finished = this.definite + this.unknown + this.failed >= safetyOps;
    return finished || this.queue.now >= SAFETY_PHASE_MAX_MS;
  }

  /** End of the safety phase: every fault is repaired. */
  private heal(): void {
    this.phase = 'liveness';
    this.healedAt = this.queue.now;
    this.blocked = new Set();
    for (const n of this.nodes.values()) {
      n.disarmCrashPoint();
      if (!n.up) n.start();
      else if (n.paused) n.resume();
      n.clockRate = 1;
    }
    this.trace('heal: partitions removed, nodes restarted and resumed, network clean');
    const check = (): void => {
      if (this.leaderSeenAt >= 0) return;
      const leader = this.currentLeader();
      if (leader === undefined) {
        this.queue.after(this.mix.tickMs, check);
        return;
      }
      this.leaderSeenAt = this.queue.now;
      this.trace(`liveness: leader n${leader.id} elected after heal`);
      // Clients that stopped (safety budget spent) now run the liveness operations.
      for (const c of this.clients) {
        if (c.done) {
          c.done = false;
          this.queue.after(this.rng.int(0, 20), () => c.next());
        }
      }
    };
    check();
  }

  private livenessDone(): boolean {
    if (this.livenessOpsDone >= LIVENESS_OPS && this.clients.every((c) => c.done)) return true;
    return this.queue.now - this.healedAt > LIVENESS_LEADER_MS + LIVENESS_OPS_MS;
  }

  private checkLiveness(events: number): void {
    if (events >= EVENTS_MAX) {
      this.violations.push(`simulator: event budget of ${EVENTS_MAX} exhausted`);
      return;
    }
    if (this.phase === 'safety') {
      this.violations.push('liveness: the safety phase never finished its operations');
      return;
    }
    if (this.leaderSeenAt < 0 || this.leaderSeenAt - this.healedAt > LIVENESS_LEADER_MS) {
      this.violations.push(
        `liveness: no leader elected within ${LIVENESS_LEADER_MS}ms after healing`,
      );
      return;
    }
    if (this.livenessOpsDone < LIVENESS_OPS) {
      this.violations.push(
        `liveness: only ${this.livenessOpsDone} of ${LIVENESS_OPS} operations completed within ${LIVENESS_LEADER_MS + LIVENESS_OPS_MS}ms after healing`,
      );
    }
  }

  /** The liveness phase met its bounds (checked again, with messages, by checkLiveness). */
  private livenessPassed(): boolean {
    return (
      this.leaderSeenAt >= 0 &&
      this.leaderSeenAt - this.healedAt <= LIVENESS_LEADER_MS &&
      this.livenessOpsDone >= LIVENESS_OPS
    );
  }

  /**
   * Quiescence runs, after the liveness phase: no client runs, so the group
   * is idle and must go quiet (leader and every member) within
   * QUIET_WAIT_MS. Then its leader crashes for good: the quiet followers
   * hear no heartbeat and run no election timer, so only node liveness can
   * wake them; a new leader must be elected within LIVENESS_LEADER_MS.
   */
  private startQuietLeaderPhase(): void {
    this.phase = 'quiet-leader';
    this.quietPhaseAt = this.queue.now;
    this.trace('quiet leader: clients idle, waiting for the group to go quiet');
    const poll = (): void => {
      if (this.quietPhaseDone || this.violations.length > 0) return;
      const now = this.queue.now;
      const crashed = this.crashedQuietLeader;
      if (crashed === null) {
        const leader = this.currentLeader();
        if (leader !== undefined && this.groupQuiet(leader)) {
          this.trace(`quiet leader: group quiet; crash leader n${leader.id} for good`);
          leader.crash();
          this.crashedQuietLeader = leader;
          this.crashedQuietLeaderAt = now;
        } else if (now - this.quietPhaseAt > QUIET_WAIT_MS) {
          this.violations.push(
            `quiescence: the idle group did not go quiet within ${QUIET_WAIT_MS}ms (${this.quietReport()})`,
          );
          return;
        }
      } else {
        const leader = this.currentLeader();
        if (leader !== undefined) {
          this.trace(
            `quiet leader: n${leader.id} elected ${(now - this.crashedQuietLeaderAt).toFixed(1)}ms after n${crashed.id} crashed`,
          );
          this.quietPhaseDone = true;
          return;
        }
        if (now - this.crashedQuietLeaderAt > LIVENESS_LEADER_MS) {
          this.violations.push(
            `liveness: no leader elected within ${LIVENESS_LEADER_MS}ms after the quiet leader n${crashed.id} crashed`,
          );
          return;
        }
      }
      this.queue.after(this.mix.tickMs, poll);
    };
    poll();
  }

  /** Which nodes are awake, for a failure message. */
  private quietReport(): string {
    const parts: string[] = [];
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      const st = n.raft.status();
      parts.push(
        `n${n.id} ${st.role}${st.quiet ? ' quiet' : ''} term=${st.term} commit=${st.commit} last=${st.lastIndex} applied=${st.applied} voters=[${st.conf.voters}] learners=[${st.conf.learners}]`,
      );
    }
    return parts.join('; ');
  }

  /** The leader and every other member of its configuration are up and quiet. */
  private groupQuiet(leader: SimNode): boolean {
    const st = leader.raft.status();
    if (!st.quiet) return false;
    const members = [...st.conf.voters, ...st.conf.votersOutgoing, ...st.conf.learners];
    return members.every((id) => {
      const n = this.nodes.get(id);
      return n !== undefined && n.up && !n.paused && n.raft.status().quiet;
    });
  }

  private checkHistory(): void {
    const result = checkLinearizable(this.history);
    if (result.verdict === 'ok') return;
    this.violations.push(
      `linearizability: ${result.verdict} on keys [${result.badKeys.join(', ')}]: ${result.message}`,
    );
  }

  // ---------------------------------------------------------------------------
  // Nodes and network

  /** Creates a node process with empty storage (not started). */
  private addNode(id: NodeId): SimNode {
    const node = new SimNode(id, this.nodeHost());
    this.nodes.set(id, node);
    if (this.mix.driftBound > 0) {
      node.clockRate = 1 + (this.rng.next() * 2 - 1) * this.mix.driftBound;
    }
    return node;
  }

  private nodeHost(): NodeHost {
    return {
      queue: this.queue,
      rng: this.rng,
      mix: this.mix,
      bugs: this.opts.bugs,
      invariants: this.invariants,
      tickMs: this.mix.tickMs,
      sendPeer: (m) => this.sendPeer(m),
      ping: (from) => this.ping(from),
      ticked: (quiet) => {
        if (!quiet) return;
        this.quietTicks++;
        if (this.phase === 'safety') this.safetyQuietTicks++;
      },
      scheduleRestart: (node) => this.scheduleRestart(node),
      reply: (client, from, resp) => this.reply(client, from, resp),
      trace: (line) => this.trace(line),
    };
  }

  private clientHost(): ConstructorParameters<typeof SimClient>[1] {
    return {
      queue: this.queue,
      rng: this.rng,
      keys: this.keys,
      rowKeys: this.rowKeys,
      tableShare: this.mix.tableShare,
      readRatio: this.mix.readRatio,
      spreadReads: this.mix.spreadReads,
      timeScale: this.mix.tickMs / 10,
      sessionOpsMax: this.mix.sessionOpsMax,
      endpoints: () => [...this.nodes.keys()],
      send: (to, req) => this.sendToNode(to, req),
      idleDelayMs: () => this.idleDelayMs(),
      claimOp: () => this.claimOp(),
      record: (op, definite) => this.record(op, definite),
      nextAttemptId: () => ++this.attemptIds,
      trace: (line) => this.trace(line),
    };
  }

  /**
   * Quiescence runs: clients start no operation in the first `idleGapMs` of
   * every `idleEveryMs` of the safety phase, so the group idles (and may go
   * quiet) while the nemesis goes on. Returns how long to wait, or 0.
   */
  private idleDelayMs(): number {
    const m = this.mix;
    if (this.phase !== 'safety' || m.idleEveryMs <= 0) return 0;
    const into = this.queue.now % m.idleEveryMs;
    return into < m.idleGapMs ? m.idleGapMs - into : 0;
  }

  private claimOp(): boolean {
    const safetyOps = this.opts.ops - LIVENESS_OPS;
    if (this.phase === 'safety') {
      if (this.issued >= safetyOps) return false;
    } else if (this.leaderSeenAt < 0 || this.issued >= this.opts.ops) return false;
    this.issued++;
    return true;
  }

  private record(op: KvOperation, definite: boolean): void {
    this.history.push(op);
    if (definite) this.definite++;
    else if (op.ok === null) this.unknown++;
    else this.failed++;
    if (this.leaderSeenAt >= 0 && op.call >= this.leaderSeenAt && definite) this.livenessOpsDone++;
    if (this.opts.trace) {
      const outcome = op.ok === null ? 'unknown' : op.ok ? 'ok' : 'fail';
      const detail =
        op.op === 'get'
          ? ` -> ${JSON.stringify(op.output)}`
          : op.op === 'cas'
            ? ` ${JSON.stringify(op.expect)}->${JSON.stringify(op.value)}`
            : op.op === 'put'
              ? ` ${JSON.stringify(op.value)}`
              : '';
      this.trace(
        `client ${op.client} ${op.op} ${op.key}${detail} ${outcome} [${op.call.toFixed(1)}, ${op.return?.toFixed(1) ?? '?'}]`,
      );
    }
  }

  /** One-way latency of a message, with occasional long detours (reordering). */
  private latency(): number {
    const m = this.mix;
    if (this.phase !== 'safety') return m.delayMinMs + this.rng.next();
    let d = m.delayMinMs + this.rng.next() * (m.delayMaxMs - m.delayMinMs);
    if (m.spikeRate > 0 && this.rng.chance(m.spikeRate)) d += this.rng.next() * m.spikeMaxMs;
    return d;
  }

  private lossy(): { drop: boolean; dup: boolean } {
    if (this.phase !== 'safety') return { drop: false, dup: false };
    return {
      drop: this.mix.lossRate > 0 && this.rng.chance(this.mix.lossRate),
      dup: this.mix.dupRate > 0 && this.rng.chance(this.mix.dupRate),
    };
  }

  private sendPeer(m: Message): void {
    if (m.type === 'vote-resp' && !m.pre && !m.reject)
      this.invariants.onVoteGranted(m.from, m.term, m.to);
    if (this.blocked.has(`${m.from}>${m.to}`)) return;
    const { drop, dup } = this.lossy();
    if (drop) return;
    const copies = dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.queue.after(this.latency(), () => {
        // A partition that forms while a message is in flight cuts it too.
        if (this.blocked.has(`${m.from}>${m.to}`)) return;
        this.nodes.get(m.to)?.deliver(m);
      });
    }
  }

  /** A node-level liveness ping to every other node, through the network (partitions and loss apply). */
  private ping(from: NodeId): void {
    for (const to of this.nodes.keys()) {
      if (to === from || this.blocked.has(`${from}>${to}`)) continue;
      if (this.lossy().drop) continue;
      this.queue.after(this.latency(), () => {
        if (this.blocked.has(`${from}>${to}`)) return;
        this.nodes.get(to)?.onPing(from);
      });
    }
  }

  /**
   * Clients live beside a home node (as in a Jepsen setup): a partition that
   * cuts the home node off from a node cuts the client off from it too.
   */
  private homeOf(client: number): NodeId {
    return nodeId(((client - 1) % this.opts.nodes) + 1);
  }

  private sendToNode(to: NodeId, req: ClientRequest): void {
    const home = this.homeOf(req.client);
    if (this.mix.clientsPartitioned && home !== to && this.blocked.has(`${home}>${to}`)) return;
    if (this.lossy().drop) return;
    this.queue.after(this.latency(), () => this.nodes.get(to)?.handleClient(req));
  }

  private reply(client: number, from: NodeId, resp: ClientResponse): void {
    const home = this.homeOf(client);
    if (this.mix.clientsPartitioned && home !== from && this.blocked.has(`${from}>${home}`)) return;
    if (this.lossy().drop) return;
    this.queue.after(this.latency(), () => this.clients[client - 1]?.onResponse(resp));
  }

  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (!n.up || n.paused) continue;
      const st = n.raft.status();
      if (st.role !== 'leader') continue;
      if (best === undefined || st.term > best.raft.status().term) best = n;
    }
    return best;
  }

  // ---------------------------------------------------------------------------
  // Nemesis

  private scheduleNemesis(): void {
    const delay = this.rng.next() * 2 * this.mix.nemesisIntervalMs;
    this.queue.after(delay, () => {
      if (this.phase !== 'safety') return;
      this.nemesis();
      this.scheduleNemesis();
    });
  }

  private nemesis(): void {
    const w = this.mix.weights;
    const total = w.partition + w.crash + w.pause + w.clock + w.membership + w.heal;
    let r = this.rng.next() * total;
    const pick = (weight: number): boolean => (r -= weight) < 0;
    if (pick(w.partition)) this.partition();
    else if (pick(w.crash)) this.crash();
    else if (pick(w.pause)) this.pause();
    else if (pick(w.clock)) this.clock();
    else if (pick(w.membership)) this.membership();
    else this.healPartition();
  }

  private liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** A victim: the leader half of the time (the interesting case), else anyone live. */
  private victim(): SimNode | undefined {
    const leader = this.currentLeader();
    if (leader !== undefined && this.rng.chance(0.5)) return leader;
    const live = this.liveNodes();
    return live.length === 0 ? undefined : live[this.rng.int(0, live.length - 1)];
  }

  private partition(): void {
    if (this.blocked.size > 0) return; // One partition at a time; it lasts its course or heals early.
    const ids = [...this.nodes.keys()];
    const shuffled = ids.slice();
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i);
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const blocked: Partition = new Set();
    const cut = (a: NodeId, b: NodeId): void => {
      blocked.add(`${a}>${b}`);
      blocked.add(`${b}>${a}`);
    };
    const kind = this.rng.int(0, 3);
    let desc: string;
    if (kind === 0) {
      // Majority/minority (or any) split.
      const k = this.rng.int(1, Math.floor(ids.length / 2));
      const side = new Set(shuffled.slice(0, k));
      for (const a of side) for (const b of ids) if (!side.has(b)) cut(a, b);
      desc = `split [${[...side]}] | rest`;
    } else if (kind === 1) {
      // Isolate the leader.
      const leader = this.currentLeader()?.id ?? shuffled[0]!;
      for (const b of ids) if (b !== leader) cut(leader, b);
      desc = `isolate n${leader}`;
    } else if (kind === 2) {
      // Asymmetric: some one-way links drop.
      const count = this.rng.int(1, ids.length);
      const pairs: string[] = [];
      for (let i = 0; i < count; i++) {
        const a = shuffled[this.rng.int(0, ids.length - 1)]!;
        const b = shuffled[this.rng.int(0, ids.length - 1)]!;
        if (a === b) continue;
        blocked.add(`${a}>${b}`);
        pairs.push(`n${a}->n${b}`);
      }
      desc = `one-way drops ${pairs.join(' ')}`;
    } else {
      // Bridge: two halves that only one node connects.
      const bridge = shuffled[0]!;
      const rest = shuffled.slice(1);
      const half = Math.floor(rest.length / 2);
      const left = rest.slice(0, half);
      const right = rest.slice(half);
      for (const a of left) for (const b of right) cut(a, b);
      desc = `bridge n${bridge} between [${left}] and [${right}]`;
    }
    this.blocked = blocked;
    const generation = ++this.partitionGeneration;
    const lastsMs = this.mix.tickMs * this.rng.int(5, 60);
    this.trace(`nemesis: partition ${desc} for ${lastsMs}ms`);
    this.queue.after(lastsMs, () => {
      if (this.partitionGeneration === generation && this.phase === 'safety') this.healPartition();
    });
  }

  private healPartition(): void {
    if (this.blocked.size === 0) return;
    this.blocked = new Set();
    this.trace('nemesis: partition healed');
  }

  private crash(): void {
    const n = this.victim();
    if (n === undefined) return;
    const down = [...this.nodes.values()].filter((x) => !x.up).length;
    if (down >= Math.ceil(this.nodes.size / 2)) return;
    if (this.mix.diskFaults && this.rng.chance(0.4)) {
      // Crash inside the node's next fsync: its batch is written but not durable (torn).
      n.crashDuringNextSync();
      this.trace(`nemesis: n${n.id} will crash during its next fsync`);
      return;
    }
    n.crash();
    this.trace(`nemesis: crash n${n.id}`);
    this.scheduleRestart(n);
  }

  /** Restarts a crashed node after a downtime; half the restarts are quick. */
  private scheduleRestart(n: SimNode): void {
    const downMs = this.rng.chance(0.5) ? this.rng.int(1, 30) : this.rng.int(30, 1500);
    const incarnation = n.incarnation;
    this.queue.after(downMs, () => {
      if (n.up || n.incarnation !== incarnation) return;
      this.trace(`nemesis: restart n${n.id} after ${downMs}ms`);
      n.start();
    });
  }

  private pause(): void {
    const n = this.victim();
    if (n === undefined || n.paused) return;
    n.pause();
    const pauseMs = this.rng.int(20, PAUSE_MAX_MS);
    this.trace(`nemesis: pause n${n.id} for ${pauseMs}ms`);
    const incarnation = n.incarnation;
    this.queue.after(pauseMs, () => {
      if (n.incarnation !== incarnation || !n.paused) return;
      this.trace(`nemesis: resume n${n.id}`);
      n.resume();
    });
  }

  private clock(): void {
    const n = this.victim();
    if (n === undefined || this.mix.driftBound === 0) return;
    if (this.rng.chance(0.5)) {
      n.clockRate = 1 + (this.rng.next() * 2 - 1) * this.mix.driftBound;
      this.trace(`nemesis: n${n.id} clock rate ${n.clockRate.toFixed(3)}`);
    } else {
      // A jump within the bound: the next tick fires up to a third of a tick early or late.
      const shift = (this.rng.next() * 2 - 1) * (this.mix.tickMs / 3);
      n.jumpClock(shift);
      this.trace(`nemesis: n${n.id} clock jump ${shift.toFixed(2)}ms`);
    }
  }

  private membership(): void {
    const leader = this.currentLeader();
    if (leader === undefined) return;
    const conf = leader.raft.status().conf;
    if (conf.votersOutgoing.length > 0) return;
    let cc: ConfChange | undefined;
    let desc = '';
    const learner = conf.learners[0];
    if (learner !== undefined) {
      cc = { kind: 'change', steps: [{ type: 'add-voter', node: learner }] };
      desc = `promote learner n${learner}`;
    } else if (
      conf.voters.length > 3 &&
      (this.rng.chance(0.5) || this.nextNodeId > 2 * this.opts.nodes)
    ) {
      const victim = conf.voters[this.rng.int(0, conf.voters.length - 1)]!;
      cc = { kind: 'change', steps: [{ type: 'remove-node', node: victim }] };
      desc = `remove n${victim}`;
    } else if (this.nextNodeId <= 2 * this.opts.nodes) {
      const id = nodeId(this.nextNodeId);
      cc = { kind: 'change', steps: [{ type: 'add-learner', node: id }] };
      desc = `add learner n${id}`;
    }
    if (cc === undefined) return;
    const r = leader.proposeConfChange(cc);
    if (!r.ok) return;
    this.trace(`nemesis: membership ${desc} (proposed at index ${r.index} on n${leader.id})`);
    if (cc.kind === 'change' && cc.steps[0]!.type === 'add-learner') {
      // A fresh process for the new member: empty storage, it learns the configuration from the leader.
      this.addNode(cc.steps[0]!.node).start();
      this.nextNodeId++;
    }
  }

  private trace(line: string): void {
    if (!this.opts.trace || this.traceLines.length >= TRACE_LINES_MAX) return;
    this.traceLines.push(`[${this.queue.now.toFixed(1).padStart(8)}ms] ${line}`);
  }
}
