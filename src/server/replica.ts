/**
 * The replica driver: one range's Raft core and key-value state machine over
 * a node's log storage and state engine. It runs the loop the `Ready` type
 * prescribes, split in two so that the caller decides when the log becomes
 * durable (one sync may cover many replicas: group commit):
 *
 *   prepare()  take a Ready, restore a received snapshot into the state
 *              engine, stage the Ready's log writes;
 *   (caller)   make the log durable (LogStorage.sync), possibly later;
 *   finish()   send the messages, apply committed entries, advance.
 *
 * The simulator and the real node process use this same class; only the
 * storage implementations and the clock differ.
 */
import { assert } from '../core/assert.ts';
import type { NodeId, RangeId, Term } from '../core/ids.ts';
import { logIndex, NO_NODE, term } from '../core/ids.ts';
import { TesseraError } from '../core/errors.ts';
import { decodeCommand } from '../kv/command.ts';
import type { KvCommand } from '../kv/command.ts';
import type { ApplyItem, ApplyOutcome } from '../kv/state-machine.ts';
import { KvStateMachine, initialDataPuts } from '../kv/state-machine.ts';
import type { SessionLimits } from '../kv/session-table.ts';
import { bootstrapSnapshot, Raft } from '../raft/raft.ts';
import type { DurableState, RaftConfig } from '../raft/raft.ts';
import type { Entry, Message, ReadState, Ready, Snapshot, SnapshotMeta } from '../raft/types.ts';
import type { LogStorage } from '../storage/log-storage.ts';
import type { LivenessView } from './node-liveness.ts';
import type { StateEngine } from '../storage/state-engine.ts';

/** What the replica reports to the node hosting it. */
export interface ReplicaEvents {
  /** A message to deliver to a peer. */
  send(m: Message): void;
  /** A committed entry was applied (cmd null for no-ops and conf changes). */
  applied(entry: Entry, cmd: KvCommand | null, outcome: ApplyOutcome | null): void;
  /** A read became safe: serve it once `applied index >= rs.index`. */
  readState(rs: ReadState): void;
}

export interface ReplicaOptions {
  readonly range: RangeId;
  readonly raft: RaftConfig;
  /** Applied entries between two log compactions. */
  readonly snapshotEveryEntries: number;
  /**
   * Limits of the state machine's client sessions; default
   * DEFAULT_SESSION_LIMITS. Every replica of the range must use the same.
   */
  readonly sessions?: SessionLimits;
}

export class Replica {
  readonly raft: Raft;
  readonly sm: KvStateMachine;
  /** The Ready between prepare() and finish(), if any. */
  private inFlight: Ready | null = null;
  private sentEarly = false;

  private constructor(
    private readonly log: LogStorage,
    state: StateEngine,
    private readonly options: ReplicaOptions,
    private readonly events: ReplicaEvents,
    durable: DurableState,
  ) {
    this.sm = new KvStateMachine(state, options.range, options.sessions, options.raft.bugs);
    this.raft = new Raft(options.raft, durable);
    this.stagedTerm = durable.hardState.term;
    this.stagedVote = durable.hardState.vote;
  }

  /** Term and vote of the last hard state staged in the log (they must be durable before messages). */
  private stagedTerm: Term;
  private stagedVote: NodeId;

  /**
   * Writes the state a founding member of a new cluster starts from: the
   * bootstrap snapshot (index 1, term 1, the initial voters) as the applied
   * position of a range holding `initialPairs` (every founder must pass the
   * same), and the matching hard state. Durable on return.
   */
  static bootstrap(
    log: LogStorage,
    state: StateEngine,
    range: RangeId,
    voters: readonly NodeId[],
    initialPairs: ReadonlyArray<readonly [key: string, value: string]> = [],
  ): void {
    const snap = bootstrapSnapshot(voters, new Uint8Array(0));
    state.commit({ range, puts: initialDataPuts(initialPairs), deletes: [], applied: snap.meta });
    log.write([
      {
        group: range,
        snapshot: snap.meta,
        hardState: { term: term(1), vote: NO_NODE, commit: logIndex(1) },
      },
    ]);
    log.sync();
  }

  /**
   * Rebuilds a replica from durable state only: the state engine says which
   * entry it has applied; the log supplies the hard state and the entries
   * after it. Throws CORRUPTION when the two cannot be reconciled.
   */
  static recover(
    log: LogStorage,
    state: StateEngine,
    options: ReplicaOptions,
    events: ReplicaEvents,
  ): Replica {
    const group = log.load(options.range);
    const applied = state.applied(options.range);
    const logStart = group.snapshot === null ? 1 : group.snapshot.index + 1;
    let entries = group.entries;
    let snapshot: Snapshot | null = null;
    if (applied === null) {
      if (group.snapshot !== null) {
        throw new TesseraError(
          'CORRUPTION',
          `range ${options.range}: the log starts after index ${group.snapshot.index} but the state engine has nothing applied`,
        );
      }
    } else {
      if (applied.index + 1 < logStart) {
        throw new TesseraError(
          'CORRUPTION',
          `range ${options.range}: state applied up to ${applied.index} but the log starts at ${logStart}`,
        );
      }
      const following = entriesFollowing(applied, entries);
      if (following === null) {
        // The state engine is ahead of the log (a snapshot was installed and
        // the crash came before the log recorded it): the log restarts after it.
        log.write([{ group: options.range, snapshot: applied }]);
        log.sync();
        entries = [];
      } else {
        entries = following;
      }
      // The snapshot's bytes are produced when needed; the core sends them to lagging followers.
      snapshot = { meta: applied, data: new KvStateMachine(state, options.range).snapshot() };
    }
    return new Replica(log, state, options, events, {
      hardState: group.hardState,
      snapshot,
      entries,
    });
  }

  /**
   * Takes the next Ready, if any, and stages its writes in the log storage.
   * A received snapshot is restored into the state engine first, so that the
   * log never starts after data the state engine lacks. Returns the Ready
   * and whether the log must be synced before {@link finish}.
   */
  prepare(): { ready: Ready; needsSync: boolean } | null {
    assert(this.inFlight === null, 'prepare() while a Ready is in flight');
    if (!this.raft.hasReady()) return null;
    const rd = this.raft.ready();
    this.inFlight = rd;
    if (rd.snapshot !== null) this.sm.restore(rd.snapshot.data);
    // A hard state that only moves the commit index needs no fsync (as in
    // etcd-raft): a restart may come back with an older commit index, which
    // is safe (committed entries stay committed; the applied position in the
    // state engine is the floor) and is learned again from the leader. Term
    // and vote must be durable before any message that depends on them.
    const termOrVote =
      rd.hardState !== null &&
      (rd.hardState.term !== this.stagedTerm || rd.hardState.vote !== this.stagedVote);
    const needsSync = rd.entries.length > 0 || termOrVote || rd.snapshot !== null;
    if (rd.hardState !== null) {
      this.stagedTerm = rd.hardState.term;
      this.stagedVote = rd.hardState.vote;
    }
    if (needsSync || rd.hardState !== null) {
      this.log.write([
        {
          group: this.options.range,
          ...(rd.snapshot !== null ? { snapshot: rd.snapshot.meta } : {}),
          ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
          ...(rd.hardState !== null ? { hardState: rd.hardState } : {}),
        },
      ]);
    }
    // Canary: send before the Ready is durable.
    this.sentEarly = this.options.raft.bugs?.has('ack-before-persist') === true;
    if (this.sentEarly) for (const m of rd.messages) this.events.send(m);
    return { ready: rd, needsSync };
  }

  /** The Ready's writes are durable: send its messages, apply, advance. */
  finish(rd: Ready): void {
    assert(this.inFlight === rd, 'finish() of a Ready that is not in flight');
    this.inFlight = null;
    if (!this.sentEarly) for (const m of rd.messages) this.events.send(m);
    this.applyEntries(rd.committedEntries);
    this.raft.advance(rd);
    for (const rs of rd.readStates) this.events.readState(rs);
    this.maybeCompact();
  }

  /**
   * Quiescence: wakes this replica if it is a quiet follower whose leader's
   * node `liveness` believes down, so that it campaigns after an election
   * timeout instead of waiting forever for a dead leader. The host calls it
   * on every replica after each liveness tick (or for the replicas led by
   * each node in `NodeLiveness.newlyDown()`). Returns true if it woke.
   */
  wakeIfLeaderDown(liveness: LivenessView): boolean {
    // Canary: quiet followers are never woken by liveness.
    if (this.options.raft.bugs?.has('quiesce-without-liveness') === true) return false;
    const st = this.raft.status();
    if (!st.quiet || st.role === 'leader' || st.leader === NO_NODE) return false;
    if (liveness.isLive(st.leader)) return false;
    this.raft.unquiesce();
    return true;
  }

  /** True while a Ready awaits finish(). */
  busy(): boolean {
    return this.inFlight !== null;
  }

  /**
   * Applies a Ready's committed entries in one state-engine commit (their
   * effects and the last applied position, atomically), then reports each.
   * Conf changes take effect in the core in log order as they are met.
   */
  private applyEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const items: ApplyItem[] = entries.map((e) => {
      if (e.type === 'conf-change') {
        const conf = this.raft.applyConfChange(e.confChange!);
        return { cmd: null, position: { index: e.index, term: e.term, conf } };
      }
      const position: SnapshotMeta = {
        index: e.index,
        term: e.term,
        conf: this.raft.status().conf,
      };
      return { cmd: e.data.length === 0 ? null : decodeCommand(e.data), position };
    });
    const outcomes = this.sm.applyBatch(items);
    for (const [i, e] of entries.entries()) this.events.applied(e, items[i]!.cmd, outcomes[i]!);
  }

  private maybeCompact(): void {
    const rlog = this.raft.log;
    const since = rlog.applied - (rlog.snapshot?.meta.index ?? 0);
    if (since < this.options.snapshotEveryEntries || rlog.pendingSnapshot !== null) return;
    // The state engine holds everything up to `applied` durably: the log may drop it.
    const snapshot = this.raft.createSnapshot(this.sm.snapshot());
    this.log.compact(this.options.range, snapshot.meta.index);
  }
}

/**
 * The stored entries that follow the applied position, or null when the log
 * does not reach it or disagrees with it. The log may disagree only if a
 * snapshot was installed into the state engine and the node crashed before
 * the log recorded it: its entries from that point on are a stale tail,
 * never committed (the snapshot's entry is). Otherwise the log either
 * contains the applied entry or starts right after it (it is only ever
 * compacted up to an applied index).
 */
function entriesFollowing(
  applied: SnapshotMeta,
  entries: readonly Entry[],
): readonly Entry[] | null {
  const at = entries.find((e) => e.index === applied.index);
  if (at !== undefined) {
    return at.term === applied.term ? entries.filter((e) => e.index > applied.index) : null;
  }
  const first = entries[0];
  if (first !== undefined && first.index === applied.index + 1) return entries;
  const last = entries[entries.length - 1];
  return last === undefined || last.index < applied.index ? null : entries;
}
