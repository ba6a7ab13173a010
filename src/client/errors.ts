/**
 * How the client turns what one attempt met (an error body, a dropped
 * connection, its own deadline) into a {@link TesseraError}, and whether
 * that attempt may have been applied.
 *
 * The two must stay apart (docs/design STYLE, "Errors"): an attempt that
 * was refused before it could apply (`applied: 'no'`: connection refused,
 * NOT_LEADER, PROPOSAL_DROPPED, ...) is safe to send again as it is; one
 * that may have applied (`applied: 'maybe'`: OUTCOME_UNKNOWN, an attempt
 * deadline, a connection lost after the request went out) may be sent
 * again only with the same session and sequence number.
 */
import { ERROR_CODES, TesseraError, type ErrorCode } from '../core/errors.ts';

/** What one failed attempt tells the retry loop. */
export interface AttemptFailure {
  /** The error, with the server's code when the server answered. */
  readonly error: TesseraError;
  /** Whether the request may have taken effect. */
  readonly applied: 'no' | 'maybe';
  /** The leader's HTTP address from a NOT_LEADER answer (`host:port`), if any. */
  readonly leaderHint: string | null;
}

/** Socket error codes that mean the request never reached the server. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/** The failure described by a non-2xx response with status `status` and body `body`. */
export function failureFromResponse(
  status: number,
  body: unknown,
  endpoint: string,
): AttemptFailure {
  const wire = body as { code?: unknown; message?: unknown; leaderHint?: unknown } | null;
  const code = typeof wire?.code === 'string' ? wire.code : undefined;
  const message = typeof wire?.message === 'string' ? wire.message : undefined;
  const hint = wire?.leaderHint as { id?: unknown; http?: unknown } | undefined;
  const leaderHint = typeof hint?.http === 'string' ? hint.http : null;
  if (code !== undefined && Object.hasOwn(ERROR_CODES, code)) {
    const details: Record<string, unknown> = { endpoint, httpStatus: status };
    if (typeof hint?.id === 'number') details.leaderHint = hint.id;
    if (leaderHint !== null) details.leaderHttp = leaderHint;
    const error = new TesseraError(code as ErrorCode, message, details);
    return { error, applied: code === 'OUTCOME_UNKNOWN' ? 'maybe' : 'no', leaderHint };
  }
  // Not an answer of the API (an unknown code, a proxy, a crash mid-reply).
  const text = `HTTP ${status} from ${endpoint}${code !== undefined ? ` (code ${code})` : ''}`;
  if (status === 503 || status === 502) {
    return {
      error: new TesseraError('UNAVAILABLE', text, { endpoint, httpStatus: status }),
      applied: 'no',
      leaderHint: null,
    };
  }
  return {
    error: new TesseraError('INTERNAL', text, { endpoint, httpStatus: status }),
    applied: 'maybe',
    leaderHint: null,
  };
}

/**
 * The failure of an attempt that got no response: `cause` is what fetch
 * threw. Connection refused (and name or route errors) mean nothing was
 * sent; anything else may have happened after the request went out.
 */
export function failureFromNetwork(
  cause: unknown,
  endpoint: string,
  isWrite: boolean,
): AttemptFailure {
  const codes = socketCodes(cause);
  const notSent = codes.some((c) => NOT_SENT_CODES.has(c));
  const what = codes.length > 0 ? codes.join('/') : String((cause as Error)?.message ?? cause);
  if (notSent) {
    const error = new TesseraError('UNAVAILABLE', `${endpoint}: ${what}`, { endpoint });
    return { error, applied: 'no', leaderHint: null };
  }
  const error = isWrite
    ? new TesseraError('OUTCOME_UNKNOWN', `${endpoint}: connection lost (${what})`, { endpoint })
    : new TesseraError('UNAVAILABLE', `${endpoint}: connection lost (${what})`, { endpoint });
  return { error, applied: 'maybe', leaderHint: null };
}

/** The failure of an attempt that passed its own deadline of `timeoutMs`. */
export function failureFromTimeout(
  endpoint: string,
  timeoutMs: number,
  isWrite: boolean,
): AttemptFailure {
  const message = `${endpoint}: no answer within ${timeoutMs} ms`;
  const details = { endpoint, timeoutMs };
  return {
    error: isWrite
      ? new TesseraError('OUTCOME_UNKNOWN', message, details)
      : new TesseraError('TIMEOUT', message, details),
    applied: 'maybe',
    leaderHint: null,
  };
}

/**
 * The error a write gives up with: OUTCOME_UNKNOWN when any attempt may
 * have applied (even if the last one was refused outright: an earlier one
 * may still be in the log), else the last attempt's own error.
 */
export function finalWriteError(last: AttemptFailure, anyMaybeApplied: boolean): TesseraError {
  if (!anyMaybeApplied || last.error.code === 'OUTCOME_UNKNOWN') return last.error;
  return new TesseraError(
    'OUTCOME_UNKNOWN',
    `an earlier attempt may have applied; last attempt: ${last.error.code}: ${last.error.message}`,
    { ...last.error.details, lastCode: last.error.code },
  );
}

/** What an aborted call rejects with: the signal's reason, or an AbortError. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** Every `code` along the cause chain of a fetch error (undici nests them). */
function socketCodes(e: unknown, depth = 0): string[] {
  if (depth > 5 || typeof e !== 'object' || e === null) return [];
  const out: string[] = [];
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') out.push(code);
  const errors = (e as { errors?: unknown }).errors;
  if (Array.isArray(errors)) for (const inner of errors) out.push(...socketCodes(inner, depth + 1));
  out.push(...socketCodes((e as { cause?: unknown }).cause, depth + 1));
  return out;
}
