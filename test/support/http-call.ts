/**
 * One JSON/HTTP request against a cluster, as a test sends it by hand:
 * follows NOT_LEADER hints, moves on from a node that does not answer, and
 * retries retryable errors while the cluster settles (bounded).
 */
import assert from 'node:assert/strict';

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

const ATTEMPTS_MAX = 30;
const RETRY_PAUSE_MS = 100;

/** `endpoints()` is read at each attempt, so a test may kill and restart nodes. */
export function httpCaller(endpoints: () => readonly string[]) {
  return async function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    let target = endpoints()[0]!;
    let last: Reply | null = null;
    for (let attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
      const res = await fetch(`http://${target}${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined
          ? { body: typeof body === 'string' ? body : JSON.stringify(body) }
          : {}),
      }).catch(() => null);
      if (res === null) {
        const all = endpoints();
        target = all[(all.indexOf(target) + 1) % all.length]!;
        continue;
      }
      last = { status: res.status, body: (await res.json()) as Record<string, unknown> };
      const hint = (last.body.leaderHint as { http?: string } | undefined)?.http;
      if (last.body.code === 'NOT_LEADER' && hint !== undefined) {
        target = hint;
        continue;
      }
      if (last.body.retryable === 'yes') {
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
        continue;
      }
      return last;
    }
    assert.fail(`no answer for ${method} ${path}: ${JSON.stringify(last)}`);
  };
}

/** Records removed by table GC so far, summed over the nodes' `/metrics`. */
export async function gcRemovedRecords(endpoints: readonly string[]): Promise<number> {
  let total = 0;
  for (const e of endpoints) {
    const text = await (await fetch(`http://${e}/metrics`)).text();
    const m = /^tessera_table_gc_removed_records_total (\d+)$/m.exec(text);
    total += m === null ? 0 : Number(m[1]);
  }
  return total;
}
