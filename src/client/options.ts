/**
 * Options of {@link TesseraClient} and of each of its calls, with their
 * defaults and limits. Every retry loop of the client is bounded twice: in
 * attempts (`retries + 1`) and in time (`deadlineMs`).
 */
import { randomInt } from 'node:crypto';
import { TesseraError } from '../core/errors.ts';

/** Exponential backoff between attempts, in milliseconds. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 25. Positive. */
  readonly initialMs?: number;
  /** Cap on the delay, before jitter. Default 1000. At least `initialMs`. */
  readonly maxMs?: number;
  /** Growth factor per retry. Default 2. At least 1. */
  readonly multiplier?: number;
}

/** Options of one call; each overrides the client-wide value of the same name. */
export interface CallOptions {
  /** Aborts the call: it rejects with `signal.reason` (an AbortError by default). */
  readonly signal?: AbortSignal;
  /**
   * Deadline of each attempt (one HTTP request), in ms. An attempt that
   * times out is a possible success: see {@link TesseraClient} for how
   * writes stay safe to retry after one.
   */
  readonly timeoutMs?: number;
  /**
   * Deadline of the whole call, all attempts and backoff included, in ms.
   * At most {@link DEADLINE_MS_MAX}: no attempt of a write is sent after it.
   */
  readonly deadlineMs?: number;
}

/** Options of {@link CallOptions} plus the read consistency. */
export interface GetOptions extends CallOptions {
  /**
   * `linearizable` (default): a ReadIndex read confirmed by the leader.
   * `serializable`: answered from the local state of whichever node the
   * client reaches; may be stale, never from the future of that node.
   */
  readonly consistency?: 'linearizable' | 'serializable';
}

/** Options of a {@link TesseraClient}. */
export interface ClientOptions {
  /** HTTP addresses of the nodes, `host:port` or `http://host:port`. At least one. */
  readonly endpoints: readonly string[];
  /** Default per-attempt deadline, in ms. Default 7000 (above the server's 5 s). */
  readonly timeoutMs?: number;
  /**
   * Default deadline of a whole call, in ms. Default 20 000, at most
   * {@link DEADLINE_MS_MAX}. A write's retries stop at it, which keeps them
   * far inside the server's session idle window (see DEADLINE_MS_MAX).
   */
  readonly deadlineMs?: number;
  /** Retries after the first attempt of a call. Default 10; at most {@link RETRIES_MAX}. */
  readonly retries?: number;
  /** Backoff between attempts. */
  readonly backoff?: BackoffOptions;
  /**
   * Id of the client's first exactly-once session: a positive integer below
   * 2^53. Default: random below 2^48. A session id must not be reused by
   * another client instance: its sequence numbers restart at 1, which the
   * server rejects as stale (INVALID_ARGUMENT).
   */
  readonly clientId?: number;
  /**
   * Writes in flight at once; each needs a session of its own, because the
   * server remembers only the last sequence number of a session. Default 16,
   * at most {@link SESSIONS_MAX}. Further writes wait for a free session.
   */
  readonly concurrentWritesMax?: number;
  /** Writes waiting for a session; beyond this, RESOURCE_EXHAUSTED. Default 10 000. */
  readonly queuedWritesMax?: number;
  /** The fetch implementation (tests wrap it to count or disturb requests). Default: global fetch. */
  readonly fetch?: typeof fetch;
}

/** Upper bound of `retries`. */
export const RETRIES_MAX = 100;
/**
 * Upper bound of `deadlineMs`: 5 minutes. The server forgets an
 * exactly-once session after 10 minutes unused (by log time, Raft thesis
 * §6.3), and a write retried after that would apply again; a client must
 * never retry a write that long, so its call deadline stays well inside.
 */
export const DEADLINE_MS_MAX = 5 * 60_000;
/** Upper bound of `concurrentWritesMax`. */
export const SESSIONS_MAX = 1024;
/** Session ids the client picks are random integers in [1, 2^48). */
export const CLIENT_ID_RANDOM_MAX = 2 ** 48;

/** Client options with every default filled in and every value checked. */
export interface ResolvedOptions {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly attemptsMax: number;
  readonly backoff: Required<BackoffOptions>;
  readonly clientId: number;
  readonly concurrentWritesMax: number;
  readonly queuedWritesMax: number;
  readonly fetch: typeof fetch;
}

/** Fills in defaults; throws INVALID_ARGUMENT for an out-of-domain option. */
export function resolveOptions(o: ClientOptions): ResolvedOptions {
  if (o.endpoints.length === 0) throw invalid('at least one endpoint is required');
  const backoff = {
    initialMs: o.backoff?.initialMs ?? 25,
    maxMs: o.backoff?.maxMs ?? 1_000,
    multiplier: o.backoff?.multiplier ?? 2,
  };
  if (!(backoff.initialMs > 0 && backoff.maxMs >= backoff.initialMs && backoff.multiplier >= 1)) {
    throw invalid('backoff needs 0 < initialMs <= maxMs and multiplier >= 1');
  }
  const retries = o.retries ?? 10;
  checkInteger(retries, 'retries', 0, RETRIES_MAX);
  const clientId = o.clientId ?? randomClientId();
  checkInteger(clientId, 'clientId', 1, Number.MAX_SAFE_INTEGER);
  const resolved: ResolvedOptions = {
    endpoints: o.endpoints.map(normalizeEndpoint),
    timeoutMs: o.timeoutMs ?? 7_000,
    deadlineMs: o.deadlineMs ?? 20_000,
    attemptsMax: retries + 1,
    backoff,
    clientId,
    concurrentWritesMax: o.concurrentWritesMax ?? 16,
    queuedWritesMax: o.queuedWritesMax ?? 10_000,
    fetch: o.fetch ?? globalThis.fetch,
  };
  checkPositive(resolved.timeoutMs, 'timeoutMs');
  checkDeadline(resolved.deadlineMs);
  checkInteger(resolved.concurrentWritesMax, 'concurrentWritesMax', 1, SESSIONS_MAX);
  checkInteger(resolved.queuedWritesMax, 'queuedWritesMax', 0, Number.MAX_SAFE_INTEGER);
  return resolved;
}

/** Checks the per-call overrides. */
export function checkCallOptions(o: CallOptions): void {
  if (o.timeoutMs !== undefined) checkPositive(o.timeoutMs, 'timeoutMs');
  if (o.deadlineMs !== undefined) checkDeadline(o.deadlineMs);
}

/** A fresh random session id in [1, 2^48). */
export function randomClientId(): number {
  return randomInt(1, CLIENT_ID_RANDOM_MAX);
}

/** `host:port` or `http://host:port/` as `http://host:port`. */
export function normalizeEndpoint(endpoint: string): string {
  const withScheme = /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw invalid(`bad endpoint "${endpoint}"`);
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw invalid(`endpoint "${endpoint}" must be host:port without a path`);
  }
  return `${url.protocol}//${url.host}`;
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message);
}

function checkPositive(v: number, name: string): void {
  if (!(Number.isFinite(v) && v > 0)) throw invalid(`${name} must be a positive number of ms`);
}

function checkDeadline(v: number): void {
  checkPositive(v, 'deadlineMs');
  if (v > DEADLINE_MS_MAX) throw invalid(`deadlineMs must be at most ${DEADLINE_MS_MAX} ms`);
}

function checkInteger(v: number, name: string, min: number, max: number): void {
  if (!(Number.isSafeInteger(v) && v >= min && v <= max)) {
    throw invalid(`${name} must be an integer in [${min}, ${max}]`);
  }
}
