/**
 * The retry policy of the client, as pure functions: whether a failed
 * attempt may be sent again, and how long to wait first.
 *
 * - `retryable: 'yes'` (NOT_LEADER, PROPOSAL_DROPPED, RESOURCE_EXHAUSTED,
 *   TIMEOUT, UNAVAILABLE incl. connection refused, ...): the attempt was not
 *   applied; always retried.
 * - `retryable: 'with-idempotency-key'` (OUTCOME_UNKNOWN, and attempt
 *   deadlines or lost connections of writes): retried only because every
 *   write the client sends carries its exactly-once session and sequence
 *   number, and every retry of one write reuses them, so the server answers
 *   a duplicate from the remembered result instead of applying it twice.
 *   Reads have no effect and are retried freely.
 * - `retryable: 'no'` (INVALID_ARGUMENT, KEY_TOO_LARGE, VALUE_TOO_LARGE,
 *   CONDITION_FAILED, ...): the same request would get the same answer;
 *   never retried.
 */
import type { TesseraError } from '../core/errors.ts';
import { abortReason } from './errors.ts';
import type { BackoffOptions } from './options.ts';

/** Largest exponent used, so the growth never overflows into Infinity. */
const BACKOFF_EXPONENT_MAX = 30;

/**
 * True if a request that failed with `error` may be sent again.
 * `idempotent`: the request is a read, or a write that carries a session
 * and sequence number.
 */
export function mayRetry(error: TesseraError, idempotent: boolean): boolean {
  switch (error.retryable) {
    case 'yes':
      return true;
    case 'with-idempotency-key':
      return idempotent;
    case 'no':
      return false;
  }
}

/**
 * The wait before retry number `retry` (1 for the first), in ms:
 * `base = min(maxMs, initialMs * multiplier^(retry-1))`, the result in
 * `[base/2, base]` ("equal jitter", so clients that failed together do not
 * retry in lockstep). `random` returns a float in [0, 1).
 */
export function backoffDelayMs(
  retry: number,
  policy: Required<BackoffOptions>,
  random: () => number,
): number {
  const exponent = Math.min(Math.max(retry - 1, 0), BACKOFF_EXPONENT_MAX);
  const base = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** exponent);
  return base / 2 + (base / 2) * random();
}

/**
 * Resolves after `ms`, or rejects with the abort reason as soon as `signal`
 * aborts (and at once if it already has).
 */
export function sleepMs(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
