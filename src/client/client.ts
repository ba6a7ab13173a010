/**
 * The typed client of Tessera's JSON/HTTP API (node/http-api.ts).
 *
 * Routing: each attempt goes to the cached leader if there is one, else to
 * the configured endpoints in turn; a NOT_LEADER answer's `leaderHint.http`
 * is followed and cached, a node that fails is dropped from the cache.
 *
 * Exactly-once writes: every write carries an exactly-once session id and
 * sequence number (`x-tessera-client` / `x-tessera-seq`, see
 * session-pool.ts) and every retry of that write reuses both. That is what
 * makes it safe to retry a write whose outcome is unknown (OUTCOME_UNKNOWN,
 * an attempt deadline, a connection lost after sending): if the first
 * attempt did apply, the server answers the retry with the first attempt's
 * remembered result instead of applying it again. Attempts that were
 * definitely not applied (NOT_LEADER, PROPOSAL_DROPPED, RESOURCE_EXHAUSTED,
 * connection refused) are retried as they are; the policy is in retry.ts.
 *
 * Errors: a call fails with a {@link TesseraError} carrying the server's
 * code, or with the abort reason of its signal. A write that gives up after
 * any attempt that may have applied fails with OUTCOME_UNKNOWN, never with
 * a code that claims "not applied".
 */
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import type { NodeStatus } from '../api/http-api.ts';
import {
  abortReason,
  failureFromNetwork,
  failureFromResponse,
  failureFromTimeout,
  finalWriteError,
  type AttemptFailure,
} from './errors.ts';
import { LeaderRouter } from './leader-router.ts';
import {
  checkCallOptions,
  randomClientId,
  resolveOptions,
  type CallOptions,
  type ClientOptions,
  type GetOptions,
  type ResolvedOptions,
} from './options.ts';
import { backoffDelayMs, mayRetry, sleepMs } from './retry.ts';
import { SessionPool, type WriteSession } from './session-pool.ts';

export type { NodeStatus };

/** A write as the client sends it. */
export type KvWrite =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string }
  | {
      readonly op: 'cas';
      readonly key: string;
      readonly expect: string | null;
      readonly value: string | null;
    };

/** One HTTP request of the API, as the retry loop sees it. */
interface ApiRequest {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  /** Writes change state; their lost attempts are OUTCOME_UNKNOWN. */
  readonly write: boolean;
  /** Sent with every attempt of a write. */
  readonly session?: WriteSession;
}

type AttemptResult =
  | { readonly ok: true; readonly body: unknown }
  | { readonly ok: false; readonly failure: AttemptFailure };

/** Consecutive NOT_LEADER hints followed at once, before backing off again. */
const HINTS_WITHOUT_BACKOFF_MAX = 1;

export class TesseraClient {
  private readonly options: ResolvedOptions;
  private readonly router: LeaderRouter;
  private readonly sessions: SessionPool;

  /** Throws INVALID_ARGUMENT for out-of-domain options (see {@link ClientOptions}). */
  constructor(options: ClientOptions) {
    this.options = resolveOptions(options);
    this.router = new LeaderRouter(this.options.endpoints);
    this.sessions = new SessionPool(
      this.options.clientId,
      this.options.concurrentWritesMax,
      this.options.queuedWritesMax,
      randomClientId,
    );
  }

  /** The id of the client's first exactly-once session. */
  get clientId(): number {
    return this.options.clientId;
  }

  /** The node the client believes leads (`http://host:port`), or null. */
  get leaderEndpoint(): string | null {
    return this.router.cachedLeader;
  }

  /** Sets `key` to `value`; resolves once the write is applied (committed by a quorum). */
  async put(key: string, value: string, opts: CallOptions = {}): Promise<void> {
    checkKey(key);
    if (typeof value !== 'string') throw invalid('the value must be a string');
    await this.write({ op: 'put', key, value }, opts);
  }

  /** Deletes `key` (deleting an absent key succeeds). */
  async delete(key: string, opts: CallOptions = {}): Promise<void> {
    checkKey(key);
    await this.write({ op: 'delete', key }, opts);
  }

  /**
   * Sets `key` to `value` if its current value is `expect` (null: absent);
   * `value` null deletes. Resolves to whether it swapped. A failed
   * comparison is `false`, not an error.
   */
  async cas(
    key: string,
    expect: string | null,
    value: string | null,
    opts: CallOptions = {},
  ): Promise<boolean> {
    checkKey(key);
    if (!isStringOrNull(expect) || !isStringOrNull(value)) {
      throw invalid('expect and value must be strings or null');
    }
    return this.write({ op: 'cas', key, expect, value }, opts);
  }

  /** The value of `key`, or null if absent. Linearizable unless asked otherwise. */
  async get(key: string, opts: GetOptions = {}): Promise<string | null> {
    checkKey(key);
    const consistency = opts.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'serializable') {
      throw invalid('consistency must be "linearizable" or "serializable"');
    }
    const query = consistency === 'serializable' ? '?consistency=serializable' : '';
    const body = await this.send({ method: 'GET', path: kvPath(key) + query, write: false }, opts);
    const value = (body as { value?: unknown } | null)?.value;
    if (!isStringOrNull(value)) throw malformed('get');
    return value;
  }

  /** The status of the node the client reaches first (the cached leader, if any). */
  async status(opts: CallOptions = {}): Promise<NodeStatus> {
    const body = await this.send({ method: 'GET', path: '/v1/status', write: false }, opts);
    const st = body as Partial<NodeStatus> | null;
    if (typeof st?.id !== 'number' || typeof st.role !== 'string') throw malformed('status');
    return body as NodeStatus;
  }

  /**
   * Sends `op` with the given session and sequence number, retrying as a
   * write always does. Resolves to `swapped` for cas, true otherwise.
   *
   * @internal For tests of exactly-once behaviour: calling it twice with the
   *   same session is what a retry after a lost answer does. Normal writes
   *   draw their sessions from the client's pool; do not mix the two on one
   *   session id.
   */
  async writeWithSeq(op: KvWrite, session: WriteSession, opts: CallOptions = {}): Promise<boolean> {
    const req: ApiRequest =
      op.op === 'put'
        ? { method: 'PUT', path: kvPath(op.key), body: { value: op.value }, write: true, session }
        : op.op === 'delete'
          ? { method: 'DELETE', path: kvPath(op.key), write: true, session }
          : {
              method: 'POST',
              path: `${kvPath(op.key)}/cas`,
              body: { expect: op.expect, value: op.value },
              write: true,
              session,
            };
    const body = (await this.send(req, opts)) as { ok?: unknown; swapped?: unknown } | null;
    if (op.op === 'cas') {
      if (typeof body?.swapped !== 'boolean') throw malformed('cas');
      return body.swapped;
    }
    if (body?.ok !== true) throw malformed(op.op);
    return true;
  }

  /** Leases a session for `op`, for its whole life, and sends it. */
  private async write(op: KvWrite, opts: CallOptions): Promise<boolean> {
    checkCallOptions(opts);
    const deadlineMs = opts.deadlineMs ?? this.options.deadlineMs;
    const start = performance.now();
    const waitLimit = AbortSignal.timeout(deadlineMs);
    const wait = opts.signal === undefined ? waitLimit : AbortSignal.any([opts.signal, waitLimit]);
    const lease = await this.sessions.acquire(wait).catch((e: unknown) => {
      if (opts.signal?.aborted) throw abortReason(opts.signal);
      if (waitLimit.aborted) {
        throw new TesseraError('TIMEOUT', `no free client session within ${deadlineMs} ms`);
      }
      throw e;
    });
    try {
      const remainingMs = Math.max(1, deadlineMs - (performance.now() - start));
      return await this.writeWithSeq(op, lease.session, { ...opts, deadlineMs: remainingMs });
    } finally {
      lease.release();
    }
  }

  /**
   * The retry loop: at most `retries + 1` attempts within the call's
   * deadline, backing off between them. Returns the parsed body of the
   * first 2xx answer.
   */
  private async send(req: ApiRequest, opts: CallOptions): Promise<unknown> {
    checkCallOptions(opts);
    const signal = opts.signal;
    if (signal?.aborted) throw abortReason(signal);
    const attemptTimeoutMs = opts.timeoutMs ?? this.options.timeoutMs;
    const deadline = performance.now() + (opts.deadlineMs ?? this.options.deadlineMs);
    // Reads have no effect; writes are idempotent only with their session.
    const idempotent = !req.write || req.session !== undefined;
    let last: AttemptFailure | undefined;
    let anyMaybeApplied = false;
    let backoffs = 0;
    let hintsInARow = 0;
    for (let attempt = 1; attempt <= this.options.attemptsMax; attempt++) {
      // The first attempt always goes out, however little time is left.
      const remainingMs = Math.max(1, deadline - performance.now());
      if (attempt > 1 && deadline - performance.now() <= 0) break;
      const endpoint = this.router.target();
      const r = await this.attempt(endpoint, req, Math.min(attemptTimeoutMs, remainingMs), signal);
      if (r.ok) {
        if (req.write) this.router.succeeded(endpoint);
        return r.body;
      }
      last = r.failure;
      anyMaybeApplied ||= last.applied === 'maybe';
      if (!mayRetry(last.error, idempotent)) throw last.error;
      if (attempt === this.options.attemptsMax) break;
      const hint = last.error.code === 'NOT_LEADER' ? last.leaderHint : null;
      if (hint !== null && this.router.follow(hint, endpoint)) {
        hintsInARow += 1;
        if (hintsInARow <= HINTS_WITHOUT_BACKOFF_MAX) continue;
      } else {
        hintsInARow = 0;
        // A full leader keeps its place; anything else moves on to the next node.
        if (last.error.code !== 'RESOURCE_EXHAUSTED') this.router.failed(endpoint);
      }
      backoffs += 1;
      const delayMs = backoffDelayMs(backoffs, this.options.backoff, Math.random);
      await sleepMs(Math.max(0, Math.min(delayMs, deadline - performance.now())), signal);
    }
    assert(last !== undefined, 'the retry loop made no attempt');
    throw req.write ? finalWriteError(last, anyMaybeApplied) : last.error;
  }

  /** One HTTP request to `endpoint` with deadline `timeoutMs`; throws only on abort. */
  private async attempt(
    endpoint: string,
    req: ApiRequest,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<AttemptResult> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const onAbort = (): void => ctl.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const headers: Record<string, string> = {};
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    if (req.session !== undefined) {
      headers['x-tessera-client'] = String(req.session.client);
      headers['x-tessera-seq'] = String(req.session.seq);
    }
    try {
      const res = await this.options.fetch(endpoint + req.path, {
        method: req.method,
        headers,
        ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
        signal: ctl.signal,
      });
      const body = parseJson(await res.text());
      if (res.ok) return { ok: true, body };
      return { ok: false, failure: failureFromResponse(res.status, body, endpoint) };
    } catch (e) {
      if (signal?.aborted) throw abortReason(signal);
      if (ctl.signal.aborted) {
        return { ok: false, failure: failureFromTimeout(endpoint, timeoutMs, req.write) };
      }
      return { ok: false, failure: failureFromNetwork(e, endpoint, req.write) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

const kvPath = (key: string): string => `/v1/kv/${encodeURIComponent(key)}`;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function isStringOrNull(v: unknown): v is string | null {
  return v === null || typeof v === 'string';
}

/** Local checks only for what the server could not even route; sizes are the server's to judge. */
function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0)
    throw invalid('the key must be a non-empty string');
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message);
}

function malformed(what: string): TesseraError {
  return new TesseraError('INTERNAL', `malformed ${what} response from the server`);
}
