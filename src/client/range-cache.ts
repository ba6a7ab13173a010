/**
 * The client's copy of the cluster's data ranges (`GET /v1/ranges`): which
 * range holds a key, so that each request goes to that range's leader. The
 * cache is a hint, never trusted for correctness: a node that does not lead
 * a key's range answers NOT_LEADER and the client follows.
 */

/** A data range as the client sees it. */
export interface ClientRange {
  readonly id: number;
  readonly start: string;
  /** Exclusive; null = to the end of the key space. */
  readonly end: string | null;
  /** The leader's HTTP address when the answering node knew it. */
  readonly leaderHttp: string | null;
}

const encoder = new TextEncoder();

/** Byte order of two keys (the server's order: UTF-8 bytes). */
export function compareKeys(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

export class RangeCache {
  private readonly sorted: readonly ClientRange[];

  constructor(ranges: readonly ClientRange[]) {
    this.sorted = [...ranges].sort((a, b) => compareKeys(a.start, b.start));
  }

  /** Every range, by start key. */
  get ranges(): readonly ClientRange[] {
    return this.sorted;
  }

  /** The range holding `key`, or undefined if the cache has no ranges. */
  lookup(key: string): ClientRange | undefined {
    let found: ClientRange | undefined;
    for (const r of this.sorted) {
      if (compareKeys(r.start, key) > 0) break;
      found = r;
    }
    return found;
  }

  /**
   * The range holding the keys just below `key` (the greatest keys less than
   * it): the one with `start < key <= end`, or undefined if no range starts
   * below `key` (`key` is the empty key, or the cache has no ranges). What a
   * backward scan that starts strictly below `key` reads first.
   */
  lookupBefore(key: string): ClientRange | undefined {
    let found: ClientRange | undefined;
    for (const r of this.sorted) {
      if (compareKeys(r.start, key) >= 0) break;
      found = r;
    }
    return found;
  }

  /** Parses a `GET /v1/ranges` body; null if it is not one. */
  static fromBody(body: unknown): RangeCache | null {
    const list = (body as { ranges?: unknown } | null)?.ranges;
    if (!Array.isArray(list)) return null;
    const ranges: ClientRange[] = [];
    for (const r of list as Record<string, unknown>[]) {
      if (typeof r?.id !== 'number' || typeof r.start !== 'string') return null;
      if (r.end !== null && typeof r.end !== 'string') return null;
      const leaderHttp = typeof r.leaderHttp === 'string' ? r.leaderHttp : null;
      ranges.push({ id: r.id, start: r.start, end: r.end as string | null, leaderHttp });
    }
    return new RangeCache(ranges);
  }
}
