/**
 * A fetch for client tests without a server: it answers the range map
 * itself (one range over the whole key space, leader unknown), records
 * every other request and answers it by a script.
 */

/** One request the scripted fetch saw. */
export interface Seen {
  readonly url: string;
  readonly method: string;
  /** The JSON body, parsed; undefined without a body. */
  readonly body: unknown;
  /** The session headers: `x-tessera-client` and `x-tessera-seq`. */
  readonly client: string | undefined;
  readonly seq: string | undefined;
}

/** Answers one recorded request; `signal` is that attempt's abort signal. */
export type Script = (seen: Seen, signal: AbortSignal) => Promise<Response> | Response;

/** A fetch that records requests (not `/v1/ranges`) and answers by `script`. */
export function scripted(script: Script): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    // The range map: one range over the whole key space, leader unknown (not recorded).
    if (String(input).endsWith('/v1/ranges')) {
      return json(200, { ranges: [{ id: 2, start: '', end: null, leaderHttp: null }] });
    }
    const s: Seen = {
      url: String(input),
      method: init?.method ?? 'GET',
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
      client: headers['x-tessera-client'],
      seq: headers['x-tessera-seq'],
    };
    seen.push(s);
    return script(s, init?.signal as AbortSignal);
  };
  return { fetch: fake as typeof fetch, seen };
}

/** A JSON response with `status`. */
export const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
