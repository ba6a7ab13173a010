/**
 * A fetch for client tests without a server: it answers the client's
 * routing look-ups itself (the range map, by default one range over the
 * whole key space with its leader unknown; the serializable schema reads
 * the client routes table rows by, NOT_FOUND unless a schema is given),
 * records every other request and answers it by a script.
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

/** What the scripted fetch answers by itself. */
export interface Routing {
  /** The body of `GET /v1/ranges`; default one range (id 2) over the whole key space. */
  readonly ranges?: readonly {
    readonly id: number;
    readonly start: string;
    readonly end: string | null;
    readonly leaderHttp: string | null;
  }[];
  /** Schemas by table name, answered to `GET /v1/tables/NAME?consistency=serializable`. */
  readonly tables?: Readonly<Record<string, unknown>>;
}

const SCHEMA_READ = /\/v1\/tables\/([^/?]+)\?consistency=serializable$/;

/**
 * A fetch that records requests (not the routing look-ups) and answers by
 * `script`; `describes` lists the tables whose schema the client read for routing.
 */
export function scripted(
  script: Script,
  routing: Routing = {},
): { fetch: typeof fetch; seen: Seen[]; describes: string[] } {
  const seen: Seen[] = [];
  const describes: string[] = [];
  const ranges = routing.ranges ?? [{ id: 2, start: '', end: null, leaderHttp: null }];
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    if (String(input).endsWith('/v1/ranges')) return json(200, { ranges });
    const schemaRead = SCHEMA_READ.exec(String(input));
    if (schemaRead !== null && (init?.method ?? 'GET') === 'GET') {
      const name = decodeURIComponent(schemaRead[1]!);
      describes.push(name);
      const table = routing.tables?.[name];
      return table === undefined
        ? json(404, { code: 'NOT_FOUND', message: `no table ${name}`, retryable: 'no' })
        : json(200, { table });
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
  return { fetch: fake as typeof fetch, seen, describes };
}

/** A JSON response with `status`. */
export const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
