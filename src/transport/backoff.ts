/**
 * Reconnect backoff: exponential in the number of consecutive failures,
 * capped, with "equal jitter" (half the delay fixed, half random) so that
 * peers that lost a node at the same moment do not reconnect in lockstep.
 */
import { assert } from '../core/assert.ts';

/** Bounds of the reconnect delay, in milliseconds. */
export interface BackoffPolicy {
  /** Delay before the first retry (before jitter). Positive. */
  readonly backoffMsMin: number;
  /** Cap on the delay (before jitter). At least `backoffMsMin`. */
  readonly backoffMsMax: number;
}

/** Default policy: 50 ms doubling up to 5 s. */
export const BACKOFF_DEFAULT: BackoffPolicy = { backoffMsMin: 50, backoffMsMax: 5_000 };

/** Largest exponent used, so `2 ** exponent` never overflows into Infinity. */
const BACKOFF_EXPONENT_MAX = 30;

/**
 * The delay before reconnect attempt number `failures` (1 for the first
 * retry), in milliseconds: `base = min(max, min * 2^(failures-1))`, result
 * in `[base/2, base]`. `random` returns a float in [0, 1).
 */
export function backoffDelayMs(
  failures: number,
  policy: BackoffPolicy,
  random: () => number,
): number {
  assert(
    Number.isSafeInteger(failures) && failures >= 1,
    () => `failures must be >= 1: ${failures}`,
  );
  assert(
    policy.backoffMsMin > 0 && policy.backoffMsMax >= policy.backoffMsMin,
    'backoff policy must have 0 < min <= max',
  );
  const exponent = Math.min(failures - 1, BACKOFF_EXPONENT_MAX);
  const base = Math.min(policy.backoffMsMax, policy.backoffMsMin * 2 ** exponent);
  return base / 2 + (random() * base) / 2;
}
