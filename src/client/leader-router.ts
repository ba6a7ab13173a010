/**
 * Which node the next attempt goes to: the cached leader if there is one,
 * else the configured endpoints in turn. The cache is filled from NOT_LEADER
 * hints and from writes that succeeded, and dropped when its node fails.
 */
import { normalizeEndpoint } from './options.ts';

export class LeaderRouter {
  /** The node believed to be leader (`http://host:port`), or null. */
  private leader: string | null = null;
  /** Index into `endpoints` of the next endpoint to try without a leader. */
  private next = 0;

  /** @param endpoints normalized endpoints (`http://host:port`), at least one. */
  constructor(private readonly endpoints: readonly string[]) {}

  /** The cached leader, or null. */
  get cachedLeader(): string | null {
    return this.leader;
  }

  /** Where the next attempt goes. */
  target(): string {
    return this.leader ?? this.endpoints[this.next % this.endpoints.length]!;
  }

  /**
   * A NOT_LEADER answer named `hint` (`host:port`) as leader. Returns false
   * if the hint is where the attempt already went (a stale hint): following
   * it again would loop without progress.
   */
  follow(hint: string, from: string): boolean {
    const leader = normalizeEndpoint(hint);
    if (leader === from) {
      this.failed(from);
      return false;
    }
    this.leader = leader;
    return true;
  }

  /** `endpoint` answered a write: it is (or was just now) the leader. */
  succeeded(endpoint: string): void {
    this.leader = endpoint;
  }

  /** `endpoint` failed or refused without a hint: forget it as leader, move on. */
  failed(endpoint: string): void {
    if (this.leader === endpoint) this.leader = null;
    const i = this.endpoints.indexOf(endpoint);
    this.next = i >= 0 ? i + 1 : this.next + 1;
  }
}
