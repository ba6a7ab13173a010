/**
 * The rpcs of `tessera.v1.KV` (proto/tessera/v1/kv.proto) as plain async
 * functions over a {@link KvService}: one handler per rpc takes a request in
 * the decoded shape of {@link DecodedRequest}, validates every field
 * (request-checks.ts), calls the service and returns the response message as
 * a plain object with the proto's field names.
 *
 * This is the one place where requests are validated. Every transport maps
 * onto these handlers: gRPC (grpc-server.ts) passes its decoded request
 * through; the JSON routes derived from the proto (proto-json.ts) decode the
 * body through the proto first; the REST routes (http-api.ts) build the
 * request from the path, query, headers and body.
 *
 * Handlers throw {@link TesseraError}s for every operational failure
 * (invalid requests and whatever the service throws) and never anything
 * else on purpose.
 */
import type { KvService, NodeStatus } from './http-api.ts';
import type { DecodedRequest, KvMethod } from './kv-proto.ts';
import { GRPC_SCAN_PAGE_BYTES_MAX } from './limits.ts';
import {
  checkKey,
  checkKeyBound,
  checkLimit,
  checkLinearizable,
  checkSession,
  checkValue,
} from './request-checks.ts';

/** One rpc: a decoded request in, the response message out (a plain object). */
export type KvHandler = (req: DecodedRequest) => Promise<object>;

/** Optional settings of {@link kvHandlers}. */
export interface KvHandlerOptions {
  /**
   * Bytes of keys and values asked of a scan page; GRPC_SCAN_PAGE_BYTES_MAX
   * (sized to fit a gRPC response) unless set.
   */
  readonly scanPageBytesMax?: number;
}

/** The handlers, one per rpc of kv.proto. Each validates, then calls the service. */
export function kvHandlers(
  service: KvService,
  options: KvHandlerOptions = {},
): Readonly<Record<KvMethod, KvHandler>> {
  const scanPageBytesMax = options.scanPageBytesMax ?? GRPC_SCAN_PAGE_BYTES_MAX;
  return {
    Put: async (req) => {
      const key = checkKey(req.key);
      const value = checkValue(req.value, 'value', false);
      const session = checkSession(req.session);
      await service.write({ op: 'put', key, value, expect: null }, session);
      return {};
    },
    Get: async (req) => {
      const key = checkKey(req.key);
      const value = await service.read(key, checkLinearizable(req.consistency));
      return value === null ? {} : { value };
    },
    Delete: async (req) => {
      const key = checkKey(req.key);
      const session = checkSession(req.session);
      await service.write({ op: 'delete', key, value: null, expect: null }, session);
      return {};
    },
    CompareAndSwap: async (req) => {
      const key = checkKey(req.key);
      const expect = checkValue(req.expect, 'expect', true);
      const value = checkValue(req.value, 'value', true);
      const session = checkSession(req.session);
      const r = await service.write({ op: 'cas', key, value, expect }, session);
      return { swapped: r.ok };
    },
    Scan: async (req) => {
      const start = checkKeyBound(req.start, 'start', false) ?? '';
      const end = checkKeyBound(req.end, 'end', true);
      const limit = checkLimit(req.limit);
      const linearizable = checkLinearizable(req.consistency);
      const page = await service.scan(start, end, limit, scanPageBytesMax, linearizable);
      const pairs = page.pairs.map(([key, value]) => ({ key, value }));
      return page.next === null ? { pairs } : { pairs, next: page.next };
    },
    Status: async () => statusMessage(service.status()),
  };
}

/** NodeStatus in the field names of StatusResponse. */
function statusMessage(st: NodeStatus): object {
  return {
    id: st.id,
    pid: st.pid,
    role: st.role,
    term: st.term,
    leader: st.leader,
    commit: st.commit,
    applied: st.applied,
    last_index: st.lastIndex,
    members: st.members.map((m) => ({ id: m.id, raft: m.raft, http: m.http })),
    ranges: st.ranges.map((r) => ({
      id: r.id,
      kind: r.kind,
      start: r.start,
      ...(r.end !== null ? { end: r.end } : {}),
      role: r.role,
      leader: r.leader,
      term: r.term,
      commit: r.commit,
      applied: r.applied,
      last_index: r.lastIndex,
      voters: r.voters,
      learners: r.learners,
      quiet: r.quiet,
    })),
  };
}
