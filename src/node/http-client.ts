/**
 * A minimal client of the HTTP API (http-api.ts) for the CLI and tests: JSON
 * requests with a deadline, and a retry loop that follows NOT_LEADER hints
 * and moves to the next endpoint when one is down or has no leader. Every
 * loop is bounded in attempts and in time.
 */

/** Status and parsed JSON body of one response. */
export interface HttpReply {
  readonly status: number;
  readonly body: unknown;
}

/** One request. */
export interface HttpRequest {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly path: string;
  /** Sent as JSON when set. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Deadline of this one request, in ms. Default 7000 (above the server's 5 s). */
  readonly timeoutMs?: number;
}

/** Bounds of {@link requestFollowingLeader}. */
export interface RetryBounds {
  /** Default 12. */
  readonly attemptsMax?: number;
  /** Default 20 000. */
  readonly deadlineMs?: number;
}

/** Sends one request to `address` (`host:port`). Rejects on network errors and timeouts. */
export async function httpJson(address: string, req: HttpRequest): Promise<HttpReply> {
  const headers: Record<string, string> = { ...req.headers };
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://${address}${req.path}`, {
    method: req.method,
    headers,
    ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
    signal: AbortSignal.timeout(req.timeoutMs ?? 7_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body };
}

/** The leader's HTTP address from a NOT_LEADER error body, if it names one. */
export function leaderHintOf(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null;
  const hint = (body as { leaderHint?: { http?: unknown } }).leaderHint;
  return typeof hint?.http === 'string' ? hint.http : null;
}

/**
 * Sends `req` until a node other than a non-leader answers: follows
 * NOT_LEADER hints, and on a network error, a NOT_LEADER without hint or
 * a 503 tries the next endpoint after a short pause. Returns the first
 * other answer; when the bounds run out, the last answer or error.
 */
export async function requestFollowingLeader(
  endpoints: readonly string[],
  req: HttpRequest,
  bounds: RetryBounds = {},
): Promise<HttpReply> {
  const attemptsMax = bounds.attemptsMax ?? 12;
  const deadline = Date.now() + (bounds.deadlineMs ?? 20_000);
  let next = 0;
  let target = endpoints[0]!;
  let last: HttpReply | Error = new Error('no endpoints');
  for (let attempt = 0; attempt < attemptsMax && Date.now() < deadline; attempt++) {
    try {
      const reply = await httpJson(target, req);
      last = reply;
      const hint = reply.status === 421 ? leaderHintOf(reply.body) : null;
      if (hint !== null && hint !== target) {
        target = hint;
        continue;
      }
      if (reply.status !== 421 && reply.status !== 503) return reply;
    } catch (e) {
      last = e instanceof Error ? e : new Error(String(e));
    }
    next = (next + 1) % endpoints.length;
    target = endpoints[next]!;
    await sleep(Math.min(100 * (attempt + 1), 500));
  }
  if (last instanceof Error) throw last;
  return last;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
