/**
 * Node liveness: which peer nodes this node has heard from recently. Pure and
 * tick-driven (no clock, no timers): the host calls {@link NodeLiveness.heard}
 * for anything that arrives from a peer (any Raft message of any range, a
 * transport keepalive) and {@link NodeLiveness.tick} on its tick.
 *
 * Quiescence needs it: a quiet Raft group sends no heartbeats, so a quiet
 * follower cannot tell by itself that its leader died. Liveness is tracked
 * per node rather than per group, so its cost does not grow with the number
 * of ranges; the host wakes (`Raft.unquiesce`) every quiet follower whose
 * leader's node is down, see {@link Replica.wakeIfLeaderDown}.
 *
 * A verdict is only a suspicion (a partition looks like a crash). Waking a
 * group on a false suspicion costs a heartbeat round, never safety.
 */
import { assert } from '../core/assert.ts';
import type { NodeId } from '../core/ids.ts';

export interface NodeLivenessOptions {
  /** A peer is down after this many ticks without anything heard from it. At least 1. */
  readonly livenessTimeoutTicks: number;
  /** Peers tracked at most; hearing from one more is a programmer error. */
  readonly peersMax: number;
}

/** Defaults for a node ticking every 10 ms: down after 1 s of silence. */
export const DEFAULT_NODE_LIVENESS: NodeLivenessOptions = {
  livenessTimeoutTicks: 100,
  peersMax: 4096,
};

/** Read-only view for code that only asks (replicas deciding whether to wake). */
export interface LivenessView {
  /** True if `peer` was heard from within the timeout. Never-heard peers are not live. */
  isLive(peer: NodeId): boolean;
}

export class NodeLiveness implements LivenessView {
  /** Ticks since each known peer was last heard from. */
  private readonly silentTicks = new Map<NodeId, number>();
  /** Peers that crossed the timeout since the last {@link newlyDown} call, in crossing order. */
  private crossed: NodeId[] = [];

  constructor(private readonly opts: NodeLivenessOptions = DEFAULT_NODE_LIVENESS) {
    assert(opts.livenessTimeoutTicks >= 1, 'livenessTimeoutTicks must be at least 1');
    assert(opts.peersMax >= 1, 'peersMax must be at least 1');
  }

  /** Something arrived from `peer` now: it is live for the next `livenessTimeoutTicks` ticks. */
  heard(peer: NodeId): void {
    if (!this.silentTicks.has(peer)) {
      assert(
        this.silentTicks.size < this.opts.peersMax,
        () => `node liveness: more than ${this.opts.peersMax} peers`,
      );
    }
    this.silentTicks.set(peer, 0);
  }

  /** One tick of time: a peer whose silence reaches the timeout is down from now on. */
  tick(): void {
    const timeout = this.opts.livenessTimeoutTicks;
    for (const [peer, silent] of this.silentTicks) {
      if (silent >= timeout) continue; // Already down; counting on would only risk overflow.
      this.silentTicks.set(peer, silent + 1);
      if (silent + 1 === timeout) this.crossed.push(peer);
    }
  }

  isLive(peer: NodeId): boolean {
    const silent = this.silentTicks.get(peer);
    return silent !== undefined && silent < this.opts.livenessTimeoutTicks;
  }

  /**
   * The peers that went down since the last call (each crossing reported
   * once; a peer heard from again and silent again is reported again).
   * Peers heard from again since they crossed are left out.
   */
  newlyDown(): NodeId[] {
    const out = this.crossed.filter((p) => !this.isLive(p));
    this.crossed = [];
    return [...new Set(out)];
  }

  /** Forgets `peer` (it left the cluster): it is neither live nor reported. */
  forget(peer: NodeId): void {
    this.silentTicks.delete(peer);
    this.crossed = this.crossed.filter((p) => p !== peer);
  }
}
