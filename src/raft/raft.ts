/**
 * The pure Raft consensus core: a synchronous, deterministic state machine.
 *
 * Inputs: {@link Raft.step} (a message from a peer), {@link Raft.tick} (one
 * unit of logical time), {@link Raft.propose} and friends (local requests).
 * Output: a {@link Ready} describing what to persist, send and apply, taken
 * with {@link Raft.ready} and acknowledged with {@link Raft.advance}. The
 * ordering rules the runtime must follow are written on the `Ready` type.
 *
 * This module does no I/O, reads no clock and draws randomness only from the
 * injected Rng, so the simulator and production run the same code.
 *
 * References: Ongaro & Ousterhout, "In Search of an Understandable Consensus
 * Algorithm" (cited as Raft §N) and Ongaro's thesis (cited as thesis §N).
 */
import { assert, assertNever } from '../core/assert.ts';
import type { LogIndex, NodeId, Term } from '../core/ids.ts';
import { logIndex, NO_NODE, term as toTerm } from '../core/ids.ts';
import type { Rng } from '../core/rng.ts';
import type { CanaryName } from './canaries.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import {
  allVoters,
  hasQuorum,
  isJoint,
  isVoter,
  jointCommitted,
  jointVoteResult,
} from './quorum.ts';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MsgApp,
  MsgAppResp,
  MsgHeartbeat,
  MsgHeartbeatResp,
  MsgReadIndex,
  MsgSnap,
  MsgVote,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SoftState,
} from './types.ts';

/** How the leader confirms it is still leader before serving a read. */
export type ReadMode =
  /** ReadIndex (thesis §6.4): a heartbeat round confirms leadership for each batch of reads. */
  | 'safe'
  /** Leader lease (thesis §6.4.1): no round trip while a quorum acknowledged recently. Needs checkQuorum. */
  | 'lease';

/** Static configuration of one Raft node. Every limit is named with its unit. */
export interface RaftConfig {
  readonly id: NodeId;
  /** Followers campaign after a random timeout in [electionTimeoutTicks, 2*electionTimeoutTicks). */
  readonly electionTimeoutTicks: number;
  /** Leader heartbeat interval. Must be less than electionTimeoutTicks. */
  readonly heartbeatIntervalTicks: number;
  /** Pre-vote (thesis §9.6): a partitioned node does not disrupt the cluster when it returns. */
  readonly preVote: boolean;
  /**
   * Check-quorum: a leader that has not heard from a quorum for an election
   * timeout steps down, and nodes that heard from a leader within the timeout
   * ignore votes (the follower half of the leader lease).
   */
  readonly checkQuorum: boolean;
  readonly readMode: ReadMode;
  /**
   * The lease lasts electionTimeoutTicks - leaseMarginTicks after the heartbeat
   * round that confirmed it was sent. The margin covers the bound on clock
   * drift between nodes.
   */
  readonly leaseMarginTicks: number;
  /** Appends in flight to one follower in replicate state. */
  readonly inflightMsgsMax: number;
  /** Payload bytes in flight to one follower in replicate state. */
  readonly inflightBytesMax: number;
  /** Payload bytes in one append message (at least one entry is always sent). */
  readonly msgBytesMax: number;
  /** Entries the leader holds uncommitted before it refuses new proposals. */
  readonly uncommittedEntriesMax: number;
  /** ReadIndex requests queued on the leader before new ones are refused. */
  readonly pendingReadsMax: number;
  /**
   * Quiescence: an idle group goes quiet (no heartbeats, no election timer)
   * so that a node can host many groups. Off unless true. The host must then
   * watch node liveness and call {@link Raft.unquiesce} on a quiet follower
   * whose leader's node is down, or a dead leader of a quiet group is never
   * replaced. The rules are on {@link Raft.unquiesce} and in docs/raft.md.
   */
  readonly quiesce?: boolean;
  readonly rng: Rng;
  /** Canaries to switch on (simulation only; see canaries.ts). */
  readonly bugs?: ReadonlySet<CanaryName>;
}

/** Sensible defaults for everything but id and rng. */
export const DEFAULT_RAFT_CONFIG = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 2,
  preVote: true,
  checkQuorum: true,
  readMode: 'safe',
  leaseMarginTicks: 3,
  inflightMsgsMax: 64,
  inflightBytesMax: 1 << 20,
  msgBytesMax: 256 << 10,
  uncommittedEntriesMax: 4096,
  pendingReadsMax: 4096,
  quiesce: false,
} as const satisfies Omit<RaftConfig, 'id' | 'rng'>;

/** What a node recovers from its durable storage when it starts. */
export interface DurableState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | null;
  /** Entries after the snapshot, in index order. */
  readonly entries: readonly Entry[];
}

/** The empty configuration of a node that has not joined a cluster yet. */
export const EMPTY_CONF: ConfState = { voters: [], votersOutgoing: [], learners: [] };

/**
 * The snapshot every founding member of a new cluster starts from: index 1,
 * term 1, the initial voters, and `data` (the empty state machine). Because
 * all founders hold the same first entry, their logs agree from the start; a
 * node that joins later starts empty and receives the configuration history
 * in a snapshot from the leader.
 */
export function bootstrapSnapshot(voters: readonly NodeId[], data: Uint8Array): Snapshot {
  assert(voters.length > 0, 'a cluster needs at least one voter');
  return {
    meta: {
      index: logIndex(1),
      term: toTerm(1),
      conf: { voters: [...voters].sort((a, b) => a - b), votersOutgoing: [], learners: [] },
    },
    data,
  };
}

/** Outcome of a local request that needs the leader. */
export type ProposeResult =
  | { readonly ok: true; readonly index: LogIndex; readonly term: Term }
  | {
      readonly ok: false;
      readonly code:
        | 'NOT_LEADER'
        | 'PROPOSAL_DROPPED'
        | 'RESOURCE_EXHAUSTED'
        | 'CONF_CHANGE_IN_PROGRESS'
        | 'INVALID_ARGUMENT';
      /** The leader this node believes in, or NO_NODE. */
      readonly leaderHint: NodeId;
    };

/** A read waiting for a heartbeat round (thesis §6.4). */
interface PendingRead {
  /** The caller's context, echoed in the ReadState. */
  readonly context: string;
  /** The heartbeat round that confirms this read; unique per leader term. */
  readonly round: string;
  /** The commit index when the read arrived. */
  readonly index: LogIndex;
  /** Who asked: this node or a follower that forwarded it. */
  readonly from: NodeId;
  /** Voters that acknowledged a heartbeat sent after the read arrived. */
  readonly acks: Set<NodeId>;
}

/** A point-in-time view of the core, for status pages, traces and checkers. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly lastIndex: LogIndex;
  readonly conf: ConfState;
  /** Quiescence: the node is quiet (no heartbeats or election timer until something wakes it). */
  readonly quiet: boolean;
}

const EMPTY = new Uint8Array(0);

/**
 * Quiescence: a leader goes quiet only if every follower answered it within
 * this many heartbeat intervals, so that every follower is likely to receive
 * the quiesce heartbeat and go quiet as well.
 */
const QUIESCE_HEARD_INTERVALS = 2;

export class Raft {
  readonly id: NodeId;
  private readonly cfg: RaftConfig;
  private readonly bugs: ReadonlySet<CanaryName>;
  readonly log: RaftLog;

  private term: Term;
  private vote: NodeId;
  private role: Role = 'follower';
  private lead: NodeId = NO_NODE;
  private conf: ConfState;

  /** Logical clock: ticks since this node started. Keeps counting while quiet. */
  private ticks = 0;
  /**
   * Quiescence (see {@link RaftConfig.quiesce}): no heartbeats, no election
   * timer, no check-quorum until something wakes the node. Volatile: a
   * restarted node starts awake.
   */
  private quiet = false;
  /** Leader: the tick at which it sent its quiesce heartbeats (their answers carry each verdict). */
  private quiesceTick = Number.NEGATIVE_INFINITY;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * Set at start: until an election timeout has passed, this node behaves as
   * if it had just heard from a leader and ignores votes, because a leader
   * may still hold a lease that counted on this node before it restarted.
   */
  private restartGuard: boolean;

  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private leadTransferee: NodeId = NO_NODE;
  private leadTransferElapsed = 0;
  /** The term in which this node sent MsgTimeoutNow: no lease reads for the rest of it. */
  private leaseRevokedInTerm: Term = toTerm(0);
  /** Index of the latest conf change proposed by this leader; no new one until it is applied. */
  private pendingConfIndex: LogIndex = logIndex(0);

  private pendingReads: PendingRead[] = [];
  /** Reads that arrived before this leader committed an entry of its term. */
  private readsBeforeCommit: { context: string; from: NodeId }[] = [];
  private readCounter = 0;

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private prevHardState: HardState;
  private prevSoftState: SoftState;

  constructor(cfg: RaftConfig, durable: DurableState) {
    assert(cfg.id !== NO_NODE, 'node id must be non-zero');
    assert(
      cfg.heartbeatIntervalTicks > 0 && cfg.heartbeatIntervalTicks < cfg.electionTimeoutTicks,
      'heartbeat interval must be positive and below the election timeout',
    );
    const bugs = cfg.bugs ?? new Set<CanaryName>();
    if (bugs.has('lease-read-without-check-quorum')) {
      // Canary: lease reads on, check-quorum off — the configuration the assertion below forbids.
      cfg = { ...cfg, readMode: 'lease', checkQuorum: false };
    }
    assert(
      cfg.readMode !== 'lease' || cfg.checkQuorum || bugs.has('lease-read-without-check-quorum'),
      'lease reads require checkQuorum (thesis §6.4.1)',
    );
    assert(
      cfg.leaseMarginTicks >= 0 && cfg.leaseMarginTicks < cfg.electionTimeoutTicks,
      'lease margin must be within the election timeout',
    );
    this.id = cfg.id;
    this.cfg = cfg;
    this.bugs = bugs;
    this.log = RaftLog.restore(durable.snapshot, durable.entries, durable.hardState.commit);
    this.log.applyUncommitted = this.bugs.has('apply-before-commit');
    this.term = durable.hardState.term;
    this.vote = this.bugs.has('forget-vote-on-restart') ? NO_NODE : durable.hardState.vote;
    this.conf = durable.snapshot?.meta.conf ?? EMPTY_CONF;
    this.restartGuard = cfg.checkQuorum;
    this.prevHardState = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.prevSoftState = { role: this.role, leader: this.lead };
    this.resetRandomizedElectionTimeout();
    this.rebuildProgress();
  }

  // ---------------------------------------------------------------------------
  // Public interface

  /**
   * Advances logical time by one tick: elections, heartbeats, check-quorum.
   * A quiet node only counts the tick: the leader lease and the progress
   * timers compare ticks, so a lease ages while its leader is quiet.
   */
  tick(): void {
    this.ticks++;
    if (this.quiet) return;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Handles one message from a peer. Messages not addressed to this node are a programmer error. */
  step(m: Message): void {
    assert(m.to === this.id, () => `message for ${m.to} stepped into ${this.id}`);
    if (this.quiet && !this.keepsQuiet(m)) this.wake();
    if (!this.stepTerm(m)) return;
    if (m.type === 'vote') {
      this.handleVote(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
      default:
        assertNever(this.role, 'role');
    }
  }

  /**
   * Proposes application data. On the leader, appends it and returns its
   * index and term: it is committed once it appears in `committedEntries`
   * with that term (a different entry at that index means it was lost).
   */
  propose(data: Uint8Array): ProposeResult {
    return this.proposeEntry('normal', data, undefined);
  }

  /**
   * Proposes a membership change. Only one may be pending: a new one is
   * refused until the previous one (and any joint state it entered) is applied.
   */
  proposeConfChange(cc: ConfChange): ProposeResult {
    if (this.role === 'leader') {
      if (this.pendingConfIndex > this.log.applied || this.leadTransferee !== NO_NODE) {
        return this.refuse('CONF_CHANGE_IN_PROGRESS');
      }
      if (cc.kind === 'change' && isJoint(this.conf)) return this.refuse('CONF_CHANGE_IN_PROGRESS');
      if (cc.kind === 'leave-joint' && !isJoint(this.conf)) return this.refuse('INVALID_ARGUMENT');
      if (confAfter(this.conf, cc) === undefined) return this.refuse('INVALID_ARGUMENT');
    }
    const result = this.proposeEntry('conf-change', EMPTY, cc);
    if (result.ok) this.pendingConfIndex = result.index;
    return result;
  }

  /**
   * Requests a linearizable read. The answer arrives as a {@link ReadState}
   * with the same `context` in a later Ready: serve the read once the state
   * machine has applied up to its index. On a follower the request is
   * forwarded to the leader; lost requests are not retried here. Wakes a
   * quiet node (a quiet leader confirms its leadership afresh: its lease
   * counts only heartbeat rounds a quorum acknowledged within the lease).
   */
  readIndex(context: string): ProposeResult | { readonly ok: true } {
    this.wake();
    if (this.role === 'leader') {
      if (this.pendingReads.length + this.readsBeforeCommit.length >= this.cfg.pendingReadsMax) {
        return this.refuse('RESOURCE_EXHAUSTED');
      }
      this.leaderReadIndex(context, this.id);
      return { ok: true };
    }
    if (this.lead === NO_NODE) return this.refuse('NOT_LEADER');
    this.send({ type: 'read-index', from: this.id, to: this.lead, term: this.term, context });
    return { ok: true };
  }

  /** Asks the leader to hand leadership to `to` (thesis §3.10). Ignored on a follower. */
  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader' || to === this.id) return;
    this.wake();
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isLearner) return;
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.leadTransferElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  /** Starts an election now (tests and operators). Wakes a quiet node. */
  campaign(): void {
    this.wake();
    this.hup(false);
  }

  /**
   * Wakes a quiet node (quiescence, see {@link RaftConfig.quiesce}); a no-op
   * on an awake one. A woken leader sends heartbeats at once and counts
   * check-quorum from this tick; a woken follower restarts its election
   * timer from zero, so it campaigns after an election timeout unless a
   * leader is heard from meanwhile.
   *
   * The host must call it on every quiet follower whose leader's node it
   * believes down (node liveness): a quiet follower's election timer is
   * stopped, so nothing else would replace a leader that died while its
   * group was quiet.
   *
   * The rules of quiescence:
   * - A leader goes quiet, at a heartbeat tick, only when the group is idle:
   *   everything it has is committed in its term and applied, every voter
   *   and learner matches its last index, every follower answered within
   *   {@link QUIESCE_HEARD_INTERVALS} heartbeat intervals, no read is
   *   pending, no transfer is under way, and no configuration change is
   *   pending or joint. It then sends one heartbeat marked `quiesce` that
   *   carries its commit index (its last index) and stops heartbeats and
   *   check-quorum. Its ticks keep counting, so its lease expires.
   * - A follower goes quiet on a quiesce heartbeat of its current leader
   *   whose commit index equals, after applying it, both its own commit and
   *   last index, with its last entry of the leader's term: its log is then
   *   the leader's. Otherwise it stays awake and says so in its answer,
   *   which wakes the leader.
   * - Everything else wakes a node: proposals, reads, transfers, campaigns,
   *   this call, and any message other than a matching quiesce heartbeat (on
   *   a follower) or an answer to heartbeats that does not refuse quiescence
   *   (on a leader). Waking is always safe: it only restores the timers of
   *   an awake node.
   */
  unquiesce(): void {
    this.wake();
  }

  /**
   * Applies a committed conf-change entry (call it while applying that entry).
   * Returns the configuration now in force. Invalid changes leave it unchanged,
   * identically on every node, since they depend only on the configuration.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const next = confAfter(this.conf, cc);
    if (next === undefined) return this.conf;
    this.conf = next;
    this.rebuildProgress();
    if (this.role === 'leader') {
      if (!isVoter(this.conf, this.id)) {
        // Thesis §4.2.2: a leader removed from the configuration steps down once the change is committed.
        this.becomeFollower(this.term, NO_NODE);
        return this.conf;
      }
      if (this.leadTransferee !== NO_NODE && !this.progress.has(this.leadTransferee)) {
        this.abortLeaderTransfer();
      }
      this.maybeCommit();
      this.broadcastAppend();
    }
    return this.conf;
  }

  /**
   * Compacts the log up to the applied index, keeping `data` (the state
   * machine's state at that index) as the snapshot. The runtime must persist
   * the returned snapshot before discarding the covered entries from storage.
   */
  createSnapshot(data: Uint8Array): Snapshot {
    const index = this.log.applied;
    const t = this.log.term(index);
    assert(t !== undefined, 'createSnapshot: applied entry is not in the log');
    const snapshot: Snapshot = { meta: { index, term: t, conf: this.conf }, data };
    this.log.compact(snapshot);
    return snapshot;
  }

  /** True when {@link ready} has something for the runtime to do. */
  hasReady(): boolean {
    if (this.msgs.length > 0 || this.readStates.length > 0) return true;
    if (this.log.pendingSnapshot !== null) return true;
    if (this.log.stableIndex < this.log.lastIndex()) return true;
    if (this.log.hasNextCommittedEntries()) return true;
    if (!sameHardState(this.hardState(), this.prevHardState)) return true;
    const ss = this.prevSoftState;
    return ss.role !== this.role || ss.leader !== this.lead;
  }

  /**
   * Collects the work for the runtime. Messages and read states are handed
   * over now (they are not returned again); call {@link advance} with the
   * same Ready once it has been persisted, sent and applied.
   */
  ready(): Ready {
    const hs = this.hardState();
    const rd: Ready = {
      hardState: sameHardState(hs, this.prevHardState) ? null : hs,
      entries: this.log.unstableEntries(),
      snapshot: this.log.pendingSnapshot,
      messages: this.msgs,
      committedEntries: this.log.nextCommittedEntries(),
      readStates: this.readStates,
      softState: { role: this.role, leader: this.lead },
    };
    this.msgs = [];
    this.readStates = [];
    this.prevSoftState = rd.softState;
    if (rd.hardState !== null) this.prevHardState = rd.hardState;
    return rd;
  }

  /** The runtime finished the Ready: its entries are durable and its committed entries applied. */
  advance(rd: Ready): void {
    if (rd.snapshot !== null) this.log.snapshotApplied(rd.snapshot);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) this.log.appliedTo(lastCommitted.index);
    // Joint consensus is left automatically once the joint configuration is applied.
    if (this.role === 'leader' && isJoint(this.conf) && this.log.applied >= this.pendingConfIndex) {
      this.proposeConfChange({ kind: 'leave-joint' });
    }
  }

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      conf: this.conf,
      quiet: this.quiet,
    };
  }

  /** The leader's view of a follower's log, for tests and status pages. */
  progressOf(id: NodeId): Readonly<Progress> | undefined {
    return this.role === 'leader' ? this.progress.get(id) : undefined;
  }

  /** True if a lease read would be served now without a round trip. */
  leaseValid(): boolean {
    if (this.role !== 'leader' || this.leadTransferee !== NO_NODE) return false;
    if (this.leaseRevokedInTerm === this.term) return false;
    if (!this.cfg.checkQuorum) return this.bugs.has('lease-read-without-check-quorum');
    const leaseTicks = this.cfg.electionTimeoutTicks - this.cfg.leaseMarginTicks;
    const fresh = (id: NodeId): boolean =>
      id === this.id || this.ticks - this.progress.get(id)!.lastAckSentTick < leaseTicks;
    return hasQuorum(this.conf, fresh);
  }

  // ---------------------------------------------------------------------------
  // Terms and roles

  /**
   * Raft §5.1 term rules, applied before any role-specific handling. Returns
   * false when the message must be dropped.
   */
  private stepTerm(m: Message): boolean {
    if (m.term > this.term) {
      if (m.type === 'vote') {
        // Check-quorum: a node that heard from a leader recently ignores
        // elections, unless the leader itself asked for one (transfer).
        if (this.inLease() && !m.transfer) return false;
        if (m.pre) return true; // A pre-vote never changes our term.
      }
      if (m.type === 'vote-resp' && m.pre && !m.reject) return true; // Term is the future one asked for.
      const leader =
        m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap' ? m.from : NO_NODE;
      this.becomeFollower(m.term, leader);
      return true;
    }
    if (m.term < this.term) {
      if (
        (this.cfg.checkQuorum || this.cfg.preVote) &&
        (m.type === 'app' || m.type === 'heartbeat')
      ) {
        // A stale leader (for example one cut off by a partition) learns of
        // our term from this answer and steps down.
        this.send({
          type: 'app-resp',
          from: this.id,
          to: m.from,
          term: this.term,
          index: logIndex(0),
          reject: false,
          rejectHint: logIndex(0),
          logTerm: toTerm(0),
        });
      } else if (m.type === 'vote' && m.pre) {
        this.send({
          type: 'vote-resp',
          from: this.id,
          to: m.from,
          term: this.term,
          pre: true,
          reject: true,
        });
      }
      return false;
    }
    return true;
  }

  private inLease(): boolean {
    return (
      this.cfg.checkQuorum &&
      this.electionElapsed < this.cfg.electionTimeoutTicks &&
      (this.lead !== NO_NODE || this.restartGuard)
    );
  }

  private reset(t: Term): void {
    this.quiet = false;
    if (this.term !== t) {
      this.term = t;
      this.vote = NO_NODE;
    }
    this.lead = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes.clear();
    this.pendingReads = [];
    this.readsBeforeCommit = [];
    this.pendingConfIndex = logIndex(0);
    this.rebuildProgress();
  }

  private becomeFollower(t: Term, leader: NodeId): void {
    this.reset(t);
    this.role = 'follower';
    this.lead = leader;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // Thesis §9.6: a pre-candidate changes neither its term nor its vote.
    this.votes.clear();
    this.quiet = false;
    this.role = 'pre-candidate';
    this.lead = NO_NODE;
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(toTerm(this.term + 1));
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    // Conf changes in the uncommitted tail may exist: refuse new ones until all is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // Raft §8: commit an entry of the new term at once (a no-op) so that
    // earlier entries commit and ReadIndex can be served.
    this.appendEntries([{ type: 'normal', data: EMPTY }]);
  }

  private resetRandomizedElectionTimeout(): void {
    const e = this.cfg.electionTimeoutTicks;
    this.randomizedElectionTimeout = e + this.cfg.rng.int(0, e - 1);
  }

  /** A node may campaign only while it is a voter of its current configuration. */
  private promotable(): boolean {
    return isVoter(this.conf, this.id);
  }

  // ---------------------------------------------------------------------------
  // Ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTimeoutTicks) this.restartGuard = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.leadTransferee !== NO_NODE) {
      this.leadTransferElapsed++;
      if (this.leadTransferElapsed >= this.cfg.electionTimeoutTicks) this.abortLeaderTransfer();
    }
    if (this.electionElapsed >= this.cfg.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        // Check-quorum: step down unless a quorum was heard from in the last timeout.
        const active = hasQuorum(
          this.conf,
          (id) => id === this.id || this.progress.get(id)?.recentActive === true,
        );
        for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
        if (!active) {
          this.becomeFollower(this.term, NO_NODE);
          return;
        }
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      if (this.cfg.quiesce === true && this.canQuiesce()) {
        this.quiet = true;
        this.quiesceTick = this.ticks;
        this.broadcastHeartbeat('', true);
      } else {
        // As etcd does: repeat the latest pending read round, so that reads
        // whose own round was lost are confirmed by this one (an
        // acknowledgement of a later heartbeat confirms every earlier read).
        this.broadcastHeartbeat(this.pendingReads.at(-1)?.round ?? '');
      }
    }
  }

  // ---------------------------------------------------------------------------
  // Quiescence (rules on unquiesce())

  /** Leader: the group is idle, so it may go quiet. */
  private canQuiesce(): boolean {
    const last = this.log.lastIndex();
    // The quiesce heartbeat's commit doubles as the leader's last index, of its term.
    if (this.log.committed !== last || !this.committedInTerm()) return false;
    if (this.log.applied !== this.log.committed) return false;
    if (this.pendingReads.length > 0 || this.readsBeforeCommit.length > 0) return false;
    if (this.leadTransferee !== NO_NODE) return false;
    if (this.pendingConfIndex > this.log.applied || isJoint(this.conf)) return false;
    const heardTicksMax = QUIESCE_HEARD_INTERVALS * this.cfg.heartbeatIntervalTicks;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      if (pr.match !== last) return false;
      if (this.ticks - pr.lastHeardTick > heardTicksMax) return false;
    }
    return true;
  }

  /**
   * True if `m` leaves a quiet node quiet: on a follower, a quiesce heartbeat
   * of its leader (whose handler checks that the logs still match); on a
   * leader, an answer to a heartbeat that does not refuse quiescence (answers
   * carry nothing a quiet leader must act on).
   */
  private keepsQuiet(m: Message): boolean {
    if (m.term !== this.term) return false;
    if (this.role === 'leader') {
      return m.type === 'heartbeat-resp' && (m.quiesce === true || m.sentTick < this.quiesceTick);
    }
    return m.type === 'heartbeat' && m.quiesce === true && m.from === this.lead;
  }

  private wake(): void {
    if (!this.quiet) return;
    this.quiet = false;
    this.electionElapsed = 0;
    if (this.role !== 'leader') return;
    this.heartbeatElapsed = 0;
    // Check-quorum counts from fresh activity: answers heard before the quiet spell do not count.
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      pr.recentActive = false;
      pr.lastProgressTick = this.ticks;
    }
    this.broadcastHeartbeat('');
  }

  // ---------------------------------------------------------------------------
  // Elections

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // Do not campaign while committed conf changes are unapplied: our view
    // of the configuration may be about to change.
    for (let i = this.log.applied + 1; i <= this.log.committed; i++) {
      if (this.log.entry(logIndex(i))?.type === 'conf-change') return;
    }
    this.campaignAs(this.cfg.preVote && !transfer, transfer);
  }

  private campaignAs(pre: boolean, transfer: boolean): void {
    let voteTerm: Term;
    if (pre) {
      this.becomePreCandidate();
      voteTerm = toTerm(this.term + 1);
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.votes.set(this.id, true);
    if (this.tallyVotes(pre)) return;
    for (const id of allVoters(this.conf)) {
      if (id === this.id) continue;
      this.send({
        type: 'vote',
        from: this.id,
        to: id,
        term: voteTerm,
        pre,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
        transfer,
      });
    }
  }

  /** Counts votes; acts on a decided election. Returns true if it was decided. */
  private tallyVotes(pre: boolean): boolean {
    const result = jointVoteResult(this.conf, this.votes);
    if (result === 'won') {
      if (pre) this.campaignAs(false, false);
      else this.becomeLeader();
      return true;
    }
    if (result === 'lost') {
      this.becomeFollower(this.term, NO_NODE);
      return true;
    }
    return false;
  }

  private handleVote(m: MsgVote): void {
    // Raft §5.2: one vote per term, first come first served; a repeated
    // request from the same candidate gets the same answer. A pre-vote for a
    // future term may be granted freely: it binds nothing.
    const canVote =
      this.vote === m.from ||
      (this.vote === NO_NODE && this.lead === NO_NODE) ||
      (m.pre && m.term > this.term);
    // Raft §5.4.1: only vote for a candidate whose log is at least as up to date.
    const upToDate =
      this.bugs.has('vote-without-log-check') || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    if (canVote && upToDate) {
      this.send({
        type: 'vote-resp',
        from: this.id,
        to: m.from,
        term: m.term,
        pre: m.pre,
        reject: false,
      });
      if (!m.pre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({
        type: 'vote-resp',
        from: this.id,
        to: m.from,
        term: this.term,
        pre: m.pre,
        reject: true,
      });
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'vote-resp': {
        if (m.pre !== (this.role === 'pre-candidate')) return;
        this.votes.set(m.from, !m.reject);
        this.tallyVotes(m.pre);
        return;
      }
      case 'app':
      case 'heartbeat':
      case 'snap':
        // Raft §5.2: a candidate that hears from a leader of its term returns to follower.
        this.becomeFollower(this.term, m.from);
        this.stepFollower(m);
        return;
      case 'read-index-resp':
      case 'app-resp':
      case 'heartbeat-resp':
      case 'timeout-now':
      case 'read-index':
      case 'vote':
        return;
      default:
        assertNever(m, 'message');
    }
  }

  // ---------------------------------------------------------------------------
  // Follower

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeout-now':
        // Thesis §3.10: the leader asked us to take over; skip pre-vote and the lease.
        if (this.promotable()) this.hup(true);
        return;
      case 'read-index-resp':
        if (!m.reject) this.readStates.push({ index: m.index, context: m.context });
        return;
      case 'read-index': // Sent to us as leader by a stale view; the asker times out and retries.
      case 'app-resp':
      case 'heartbeat-resp':
      case 'vote-resp':
      case 'vote':
        return;
      default:
        assertNever(m, 'message');
    }
  }

  private handleAppend(m: MsgApp): void {
    if (m.index < this.log.committed) {
      this.sendAppResp(m.from, this.log.committed, false);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.sendAppResp(m.from, lastNew, false);
      return;
    }
    // Fast backtracking: tell the leader where our log may still match.
    const hintIndex = this.log.findConflictByTerm(
      logIndex(Math.min(m.index, this.log.lastIndex())),
      m.logTerm,
    );
    this.send({
      type: 'app-resp',
      from: this.id,
      to: m.from,
      term: this.term,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: this.log.term(hintIndex) ?? toTerm(0),
    });
  }

  private sendAppResp(to: NodeId, index: LogIndex, reject: boolean): void {
    this.send({
      type: 'app-resp',
      from: this.id,
      to,
      term: this.term,
      index,
      reject,
      rejectHint: logIndex(0),
      logTerm: toTerm(0),
    });
  }

  private handleHeartbeat(m: MsgHeartbeat): void {
    this.log.commitTo(m.commit);
    let quiet = false;
    if (m.quiesce === true && this.cfg.quiesce === true) {
      // Quiesce only with the leader's log: its commit index is its last index, of its term.
      const log = this.log;
      quiet =
        log.committed === m.commit && log.lastIndex() === m.commit && log.lastTerm() === m.term;
      if (quiet) this.quiet = true;
      else this.wake();
    }
    const resp: MsgHeartbeatResp = {
      type: 'heartbeat-resp',
      from: this.id,
      to: m.from,
      term: this.term,
      context: m.context,
      sentTick: m.sentTick,
      ...(quiet ? { quiesce: true } : {}),
    };
    this.send(resp);
  }

  private handleSnapshot(m: MsgSnap): void {
    const meta = m.snapshot.meta;
    if (meta.index <= this.log.committed) {
      this.sendAppResp(m.from, this.log.committed, false);
      return;
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // Our log already contains the snapshot's last entry: just commit up to
      // it. Acknowledge only that far: entries after it were never checked
      // against the leader's log and may be a stale tail.
      this.log.commitTo(meta.index);
      this.sendAppResp(m.from, this.log.committed, false);
      return;
    }
    this.log.restoreSnapshot(m.snapshot);
    this.conf = meta.conf;
    this.rebuildProgress();
    this.sendAppResp(m.from, this.log.lastIndex(), false);
  }

  // ---------------------------------------------------------------------------
  // Leader

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'app-resp':
        this.handleAppResp(m);
        return;
      case 'heartbeat-resp':
        this.handleHeartbeatResp(m);
        return;
      case 'read-index':
        if (this.pendingReads.length + this.readsBeforeCommit.length >= this.cfg.pendingReadsMax) {
          this.sendReadIndexResp(m, logIndex(0), true);
        } else {
          this.leaderReadIndex(m.context, m.from);
        }
        return;
      case 'vote-resp':
      case 'app':
      case 'heartbeat':
      case 'snap':
      case 'timeout-now':
      case 'read-index-resp':
      case 'vote':
        return;
      default:
        assertNever(m, 'message');
    }
  }

  private handleAppResp(m: MsgAppResp): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.lastHeardTick = this.ticks;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    // Index 0 is never a real acknowledgement (it is how a node tells a stale
    // leader about its higher term), so it cannot confirm a probe.
    const confirmsProbe = pr.state === 'probe' && pr.match === m.index && m.index > 0;
    if (!pr.maybeUpdate(m.index) && !confirmsProbe) return;
    pr.lastProgressTick = this.ticks;
    switch (pr.state) {
      case 'probe':
        pr.becomeReplicate();
        break;
      case 'snapshot':
        if (pr.match >= pr.pendingSnapshot) pr.becomeProbe();
        break;
      case 'replicate':
        pr.inflights.freeLE(m.index);
        break;
    }
    this.maybeCommit();
    this.sendAppendsWhileUnpaused(m.from);
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResp(m: MsgHeartbeatResp): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.lastHeardTick = this.ticks;
    if (m.sentTick > pr.lastAckSentTick) pr.lastAckSentTick = m.sentTick;
    if (pr.state === 'probe') pr.probeSent = false;
    if (pr.state === 'replicate') {
      if (pr.inflights.full()) pr.inflights.freeFirstOne();
      // An append was probably lost (no progress for a while): find the follower's end again.
      const stalledTicks = this.ticks - pr.lastProgressTick;
      if (pr.match < this.log.lastIndex() && stalledTicks >= 2 * this.cfg.heartbeatIntervalTicks) {
        pr.becomeProbe();
        pr.lastProgressTick = this.ticks;
      }
    }
    if (
      pr.state === 'snapshot' &&
      this.ticks - pr.snapshotSentTick >= this.cfg.electionTimeoutTicks
    ) {
      pr.becomeProbe(); // The snapshot was probably lost: find the follower again.
    }
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    if (m.context !== '') this.ackRead(m.context, m.from);
  }

  private proposeEntry(
    type: Entry['type'],
    data: Uint8Array,
    cc: ConfChange | undefined,
  ): ProposeResult {
    this.wake();
    if (this.role !== 'leader') return this.refuse('NOT_LEADER');
    if (this.leadTransferee !== NO_NODE) return this.refuse('PROPOSAL_DROPPED');
    if (this.log.lastIndex() - this.log.committed >= this.cfg.uncommittedEntriesMax) {
      return this.refuse('RESOURCE_EXHAUSTED');
    }
    const index = this.appendEntries([{ type, data, ...(cc ? { confChange: cc } : {}) }]);
    return { ok: true, index, term: this.term };
  }

  private refuse(code: Exclude<ProposeResult, { ok: true }>['code']): ProposeResult {
    return { ok: false, code, leaderHint: this.lead };
  }

  private appendEntries(
    items: { type: Entry['type']; data: Uint8Array; confChange?: ConfChange }[],
  ): LogIndex {
    let index = this.log.lastIndex();
    const entries: Entry[] = items.map((it) => {
      index = logIndex(index + 1);
      return { term: this.term, index, ...it };
    });
    const last = this.log.appendNew(entries);
    // The leader's own log counts toward the quorum: it is persisted in the
    // same Ready that first announces the new commit index (see Ready).
    this.progress.get(this.id)?.maybeUpdate(last);
    this.maybeCommit();
    this.broadcastAppend();
    return last;
  }

  /**
   * Advances the commit index to what a quorum has matched. Raft §5.4.2: only
   * an entry of the current term is committed by counting replicas; earlier
   * entries commit indirectly with it.
   */
  private maybeCommit(): boolean {
    const quorumIndex = jointCommitted(
      this.conf,
      (id) => this.progress.get(id)?.match ?? logIndex(0),
    );
    const index = logIndex(Math.min(quorumIndex, this.log.lastIndex()));
    if (index <= this.log.committed) return false;
    if (this.log.term(index) !== this.term && !this.bugs.has('commit-previous-term')) return false;
    this.log.commitTo(index);
    this.releaseReadsBeforeCommit();
    return true;
  }

  private broadcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private sendAppendsWhileUnpaused(to: NodeId): void {
    const pr = this.progress.get(to);
    if (pr === undefined) return;
    while (!pr.isPaused() && pr.next <= this.log.lastIndex()) {
      if (!this.sendAppend(to)) break;
    }
  }

  /**
   * Sends one append (or a snapshot if the needed entries are compacted) to
   * `to`, respecting flow control. Returns true if a message was sent.
   */
  private sendAppend(to: NodeId): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = logIndex(pr.next - 1);
    const prevTerm = this.log.term(prevIndex);
    const entries = this.log.entriesFrom(pr.next, this.cfg.msgBytesMax);
    if (prevTerm === undefined || entries === undefined) {
      const snapshot = this.log.snapshot;
      if (snapshot === null) return false;
      pr.becomeSnapshot(snapshot.meta.index, this.ticks);
      this.send({ type: 'snap', from: this.id, to, term: this.term, snapshot });
      return true;
    }
    // Nothing new to pipeline: followers learn the commit index from heartbeats and later appends.
    if (entries.length === 0 && pr.state === 'replicate') return false;
    this.send({
      type: 'app',
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    });
    const last = entries[entries.length - 1];
    if (last !== undefined) {
      let bytes = 0;
      for (const e of entries) bytes += e.data.length;
      pr.sentEntries(last.index, bytes);
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    }
    return true;
  }

  private broadcastHeartbeat(context: string, quiesce = false): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      this.send({
        type: 'heartbeat',
        from: this.id,
        to: id,
        term: this.term,
        // The follower may hold a divergent tail beyond its known match: never commit into it.
        commit: this.bugs.has('heartbeat-commit-beyond-match')
          ? this.log.committed
          : logIndex(Math.min(pr.match, this.log.committed)),
        context,
        sentTick: this.ticks,
        ...(quiesce ? { quiesce: true } : {}),
      });
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    // Thesis §6.4.1: the target campaigns past the followers' lease promise,
    // so this leader's lease ends here for the rest of its term, even if the
    // transfer is later abandoned.
    this.leaseRevokedInTerm = this.term;
    this.send({ type: 'timeout-now', from: this.id, to, term: this.term });
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NO_NODE;
    this.leadTransferElapsed = 0;
  }

  // ---------------------------------------------------------------------------
  // Reads (thesis §6.4)

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private leaderReadIndex(context: string, from: NodeId): void {
    if (!this.committedInTerm()) {
      // Thesis §6.4 step 1: the commit index is only known to be current
      // once an entry of this term has committed.
      this.readsBeforeCommit.push({ context, from });
      return;
    }
    const index = this.log.committed;
    const singleVoter = hasQuorum(this.conf, (id) => id === this.id);
    if (singleVoter || (this.cfg.readMode === 'lease' && this.leaseValid())) {
      this.answerRead(context, from, index);
      return;
    }
    const round = `${this.term}.${++this.readCounter}`;
    this.pendingReads.push({ context, round, index, from, acks: new Set([this.id]) });
    this.broadcastHeartbeat(round);
  }

  private releaseReadsBeforeCommit(): void {
    if (this.readsBeforeCommit.length === 0 || !this.committedInTerm()) return;
    const waiting = this.readsBeforeCommit;
    this.readsBeforeCommit = [];
    for (const r of waiting) this.leaderReadIndex(r.context, r.from);
  }

  /** A heartbeat of read round `context` was acknowledged by `from`. */
  private ackRead(round: string, from: NodeId): void {
    const at = this.pendingReads.findIndex((r) => r.round === round);
    if (at < 0) return;
    const read = this.pendingReads[at]!;
    read.acks.add(from);
    if (!hasQuorum(this.conf, (id) => read.acks.has(id))) return;
    // Leadership confirmed after every read queued up to this one arrived.
    const done = this.pendingReads.splice(0, at + 1);
    for (const r of done) this.answerRead(r.context, r.from, r.index);
  }

  private answerRead(context: string, from: NodeId, index: LogIndex): void {
    if (from === this.id) {
      this.readStates.push({ index, context });
    } else {
      this.send({
        type: 'read-index-resp',
        from: this.id,
        to: from,
        term: this.term,
        context,
        index,
        reject: false,
      });
    }
  }

  private sendReadIndexResp(m: MsgReadIndex, index: LogIndex, reject: boolean): void {
    this.send({
      type: 'read-index-resp',
      from: this.id,
      to: m.from,
      term: this.term,
      context: m.context,
      index,
      reject,
    });
  }

  // ---------------------------------------------------------------------------
  // Helpers

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Makes the progress map match the configuration, keeping known followers' state. */
  private rebuildProgress(): void {
    const members = new Set<NodeId>([...allVoters(this.conf), ...this.conf.learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    const last = this.log.lastIndex();
    for (const id of members) {
      const learner = this.conf.learners.includes(id);
      const existing = this.progress.get(id);
      if (existing !== undefined && existing.isLearner === learner && this.role === 'leader')
        continue;
      const pr = new Progress(
        logIndex(last + 1),
        this.cfg.inflightMsgsMax,
        this.cfg.inflightBytesMax,
        learner,
      );
      if (existing !== undefined && this.role === 'leader') {
        pr.match = existing.match;
        pr.next = existing.next;
        pr.recentActive = existing.recentActive;
        pr.lastAckSentTick = existing.lastAckSentTick;
        pr.lastHeardTick = existing.lastHeardTick;
      }
      if (id === this.id) pr.match = last;
      pr.recentActive = pr.recentActive || id === this.id;
      this.progress.set(id, pr);
    }
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * The configuration after `cc`, or undefined if `cc` is invalid here. A change
 * of voters enters joint consensus; learner-only changes apply directly.
 */
export function confAfter(conf: ConfState, cc: ConfChange): ConfState | undefined {
  if (cc.kind === 'leave-joint') {
    if (!isJoint(conf)) return undefined;
    return { voters: conf.voters, votersOutgoing: [], learners: conf.learners };
  }
  if (isJoint(conf) || cc.steps.length === 0) return undefined;
  const voters = new Set(conf.voters);
  const learners = new Set(conf.learners);
  let votersChanged = false;
  for (const s of cc.steps) {
    switch (s.type) {
      case 'add-voter':
        if (voters.has(s.node)) return undefined;
        learners.delete(s.node);
        voters.add(s.node);
        votersChanged = true;
        break;
      case 'add-learner':
        if (voters.has(s.node) || learners.has(s.node)) return undefined;
        learners.add(s.node);
        break;
      case 'remove-node':
        if (voters.delete(s.node)) votersChanged = true;
        else if (!learners.delete(s.node)) return undefined;
        break;
      default:
        assertNever(s, 'conf change step');
    }
  }
  if (voters.size === 0) return undefined;
  const sorted = (s: Set<NodeId>): NodeId[] => [...s].sort((a, b) => a - b);
  if (!votersChanged)
    return { voters: conf.voters, votersOutgoing: [], learners: sorted(learners) };
  return { voters: sorted(voters), votersOutgoing: conf.voters, learners: sorted(learners) };
}
