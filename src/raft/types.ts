/**
 * Data types of the pure Raft core: log entries, persistent state, snapshots,
 * configurations and the messages peers exchange. Everything here is plain
 * data: immutable once emitted, safe to copy, encode or deliver twice.
 */
import type { LogIndex, NodeId, Term } from '../core/ids.ts';

/** What a log entry carries. */
export type EntryType =
  /** Opaque application data (a state-machine command), or empty (a leader's no-op). */
  | 'normal'
  /** A {@link ConfChange}; applied by the state machine through `applyConfChange`. */
  | 'conf-change';

/** One entry of the replicated log. */
export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly type: EntryType;
  /** Application bytes; empty for a leader's no-op entry. */
  readonly data: Uint8Array;
  /** Set on conf-change entries (`data` is then empty). */
  readonly confChange?: ConfChange;
}

/** State that must be durable before any message that depends on it is sent. */
export interface HardState {
  readonly term: Term;
  /** The node this node voted for in `term`, or NO_NODE. */
  readonly vote: NodeId;
  /** Highest index known committed. Persisted so a restart re-applies up to it. */
  readonly commit: LogIndex;
}

/**
 * A cluster configuration. Outside joint consensus `votersOutgoing` is empty
 * and `voters` is the one voting set. In joint consensus (Raft §6, thesis
 * §4.3) a decision needs a majority of `voters` (incoming) and a majority of
 * `votersOutgoing` (outgoing).
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  /** Non-voting members that receive the log (to catch up before promotion). */
  readonly learners: readonly NodeId[];
}

/** One step of a membership change. */
export type ConfChangeStep =
  | { readonly type: 'add-voter'; readonly node: NodeId }
  | { readonly type: 'add-learner'; readonly node: NodeId }
  | { readonly type: 'remove-node'; readonly node: NodeId };

/**
 * A membership change. A change that touches voters enters joint consensus
 * (old and new voter sets both decide) and the leader then proposes the
 * `leave-joint` change by itself once the joint configuration is applied. A
 * change that only adds or removes learners takes effect directly.
 */
export type ConfChange =
  | { readonly kind: 'change'; readonly steps: readonly ConfChangeStep[] }
  | { readonly kind: 'leave-joint' };

/** Identifies the state a snapshot captures. */
export interface SnapshotMeta {
  /** Index of the last entry the snapshot covers. */
  readonly index: LogIndex;
  /** Term of that entry. */
  readonly term: Term;
  /** The configuration in force at `index`. */
  readonly conf: ConfState;
}

/** A state-machine snapshot: everything up to and including `meta.index`. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** Opaque state-machine bytes. */
  readonly data: Uint8Array;
}

/** A linearizable read that became safe: serve it once applied >= index. */
export interface ReadState {
  /** The commit index when the read was requested; the read sees at least this. */
  readonly index: LogIndex;
  /** The caller's request context, echoed back. */
  readonly context: string;
}

/** Fields every message has. */
interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term (Raft §5.1: a higher term makes the receiver step down). */
  readonly term: Term;
}

/** AppendEntries (Raft §5.3): entries following (index, logTerm). */
export interface MsgApp extends MessageBase {
  readonly type: 'app';
  /** Index of the entry preceding `entries`. */
  readonly index: LogIndex;
  /** Term of the entry at `index`. */
  readonly logTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
}

/** Reply to {@link MsgApp}. */
export interface MsgAppResp extends MessageBase {
  readonly type: 'app-resp';
  /** On success: the last index now matching the leader. On rejection: the rejected `MsgApp.index`. */
  readonly index: LogIndex;
  readonly reject: boolean;
  /**
   * Fast backtracking hint on rejection: the follower's guess of the largest
   * index at which its log may still match, and the term of its entry there.
   */
  readonly rejectHint: LogIndex;
  readonly logTerm: Term;
}

/** RequestVote (Raft §5.2, §5.4.1), or PreVote (thesis §9.6) when `pre` is set. */
export interface MsgVote extends MessageBase {
  readonly type: 'vote';
  readonly pre: boolean;
  readonly lastIndex: LogIndex;
  readonly lastTerm: Term;
  /** Set when a leadership transfer asked for this election: bypasses the leader lease. */
  readonly transfer: boolean;
}

/** Reply to {@link MsgVote}. For a pre-vote, `term` is the term the candidate asked for. */
export interface MsgVoteResp extends MessageBase {
  readonly type: 'vote-resp';
  readonly pre: boolean;
  readonly reject: boolean;
}

/** Leader heartbeat: keeps followers from campaigning and confirms leadership for reads. */
export interface MsgHeartbeat extends MessageBase {
  readonly type: 'heartbeat';
  /** min(leader commit, follower's known match): never points past the follower's log. */
  readonly commit: LogIndex;
  /** The ReadIndex round this heartbeat confirms, or '' for none. */
  readonly context: string;
  /** The leader's tick when it sent this; echoed back for the lease. */
  readonly sentTick: number;
  /**
   * Set when the leader has gone quiet (quiescence, see `RaftConfig.quiesce`):
   * the group is idle, this is the last heartbeat until something wakes it,
   * and `commit` is then also the leader's last index, whose term is `term`.
   */
  readonly quiesce?: boolean;
}

/** Reply to {@link MsgHeartbeat}. */
export interface MsgHeartbeatResp extends MessageBase {
  readonly type: 'heartbeat-resp';
  readonly context: string;
  readonly sentTick: number;
  /**
   * Set when answering a quiesce heartbeat: the follower matched the leader
   * and went quiet too. A quiesce heartbeat answered without it means the
   * follower stays awake, so the leader must wake as well.
   */
  readonly quiesce?: boolean;
}

/** InstallSnapshot (Raft §7). */
export interface MsgSnap extends MessageBase {
  readonly type: 'snap';
  readonly snapshot: Snapshot;
}

/** Leadership transfer (thesis §3.10): the recipient campaigns at once. */
export interface MsgTimeoutNow extends MessageBase {
  readonly type: 'timeout-now';
}

/** A follower forwards a ReadIndex request to the leader. */
export interface MsgReadIndex extends MessageBase {
  readonly type: 'read-index';
  readonly context: string;
}

/** The leader's answer to {@link MsgReadIndex}: the read index, or a rejection. */
export interface MsgReadIndexResp extends MessageBase {
  readonly type: 'read-index-resp';
  readonly context: string;
  readonly index: LogIndex;
  readonly reject: boolean;
}

/** Every message of the protocol. Switches over `type` end in `assertNever`. */
export type Message =
  | MsgApp
  | MsgAppResp
  | MsgVote
  | MsgVoteResp
  | MsgHeartbeat
  | MsgHeartbeatResp
  | MsgSnap
  | MsgTimeoutNow
  | MsgReadIndex
  | MsgReadIndexResp;

export type MessageType = Message['type'];

/** A node's role (Raft §5.1, plus the pre-candidate of thesis §9.6). */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/**
 * Everything the runtime must do after stepping the core, in this order:
 *
 * 1. **Persist** `snapshot` (if any), then `entries` (replacing any stored
 *    entries at or after the first one's index), then `hardState` (if any),
 *    atomically or in that order, and durably (fsync).
 * 2. **Send** `messages`, only after step 1 is durable: a vote or an append
 *    acknowledgement promises state that must survive a crash.
 * 3. **Apply** `committedEntries` to the state machine in order, after
 *    `snapshot` (if any) is restored. These are committed: never apply an
 *    entry that did not arrive here.
 * 4. Call `advance(ready)` on the core, exactly once per Ready.
 *
 * `readStates` may be served once the state machine has applied at least
 * their index.
 */
export interface Ready {
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /** Volatile state for observers (not persisted): role and leader changes. */
  readonly softState: SoftState;
}

/** Volatile state of the core that observers may want to watch. */
export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId;
}
