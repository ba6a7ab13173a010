/**
 * The leader's view of one follower's log (Raft §5.3 nextIndex/matchIndex),
 * with the replication state machine of etcd-style flow control:
 * - `probe`: one append at a time until the follower's position is found;
 * - `replicate`: pipelined appends, bounded by {@link Inflights};
 * - `snapshot`: a snapshot was sent; appends wait until it is acknowledged.
 */
import type { LogIndex } from '../core/ids.ts';
import { logIndex } from '../core/ids.ts';
import { Inflights } from './inflights.ts';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be replicated on the follower. Invariant: match < next. */
  match: LogIndex = logIndex(0);
  /** Index of the next entry to send. */
  next: LogIndex;
  state: ProgressState = 'probe';
  /** In probe state: an append was sent and is not yet answered. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot sent. */
  pendingSnapshot: LogIndex = logIndex(0);
  /** Leader tick when the snapshot was sent (to retry if it is lost). */
  snapshotSentTick = 0;
  /** Heard from the follower since the last check-quorum round. */
  recentActive = false;
  /** Leader tick when `match` last advanced (to detect lost appends). */
  lastProgressTick = 0;
  /** Highest leader tick echoed by a heartbeat answer (for the leader lease). */
  lastAckSentTick = Number.NEGATIVE_INFINITY;
  /** Leader tick of the last answer of any kind from the follower (quiescence needs recent ones). */
  lastHeardTick = Number.NEGATIVE_INFINITY;
  readonly inflights: Inflights;

  constructor(
    next: LogIndex,
    inflightCountMax: number,
    inflightBytesMax: number,
    readonly isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(inflightCountMax, inflightBytesMax);
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = logIndex(Math.max(this.match + 1, pending + 1));
    } else {
      this.resetState('probe');
      this.next = logIndex(this.match + 1);
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = logIndex(this.match + 1);
  }

  becomeSnapshot(index: LogIndex, tick: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = index;
    this.snapshotSentTick = tick;
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = logIndex(0);
    this.inflights.reset();
  }

  /** Records an acknowledgement up to `index`. Returns false if it was stale. */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = logIndex(index + 1);
    return updated;
  }

  /**
   * Handles a rejected append of `rejected` (its preceding index), with the
   * follower's hint that its log may match up to `matchHint`. Returns false if
   * the rejection is stale (answers an append we no longer care about).
   */
  maybeDecrTo(rejected: LogIndex, matchHint: LogIndex): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = logIndex(this.match + 1);
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = logIndex(Math.max(Math.min(rejected, matchHint + 1), this.match + 1));
    this.probeSent = false;
    return true;
  }

  /** After sending entries up to `last` carrying `bytes`: advance the pipeline. */
  sentEntries(last: LogIndex, bytes: number): void {
    if (this.state === 'replicate') {
      this.next = logIndex(last + 1);
      this.inflights.add(last, bytes);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** True when no append may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
