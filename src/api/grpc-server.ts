/**
 * The gRPC API of a node: service `tessera.v1.KV` (proto/tessera/v1/kv.proto)
 * over a {@link KvService}, through the same handlers as the JSON/HTTP API
 * (kv-handlers.ts), and, when the service also serves tables, service
 * `tessera.v1.Tables` (proto/tessera/v1/table.proto) through
 * table-handlers.ts; errors are reported as grpc-errors.ts describes.
 *
 * Limits: a request message may be at most {@link GRPC_REQUEST_BYTES_MAX}
 * (grpc-js refuses a larger one with RESOURCE_EXHAUSTED before a handler
 * runs, so that refusal carries no tessera-* metadata); a response at most
 * {@link GRPC_RESPONSE_BYTES_MAX}, which scan pages are sized to fit
 * (GRPC_SCAN_PAGE_BYTES_MAX); at
 * most {@link GRPC_STREAMS_PER_CONNECTION_MAX} calls in flight per
 * connection, on top of the node's own bound on requests in flight.
 *
 * No handler can crash the process: every rejection is turned into a
 * status, and exceptions that are not TesseraErrors into INTERNAL (logged).
 */
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { isTableService, type KvService, type TableService } from './http-api.ts';
import { asTesseraError, grpcErrorOf } from './grpc-errors.ts';
import { kvHandlers } from './kv-handlers.ts';
import { loadKvService, type DecodedRequest } from './kv-proto.ts';
import { VALUE_BYTES_MAX } from './limits.ts';
import type { ProtoHandler } from './proto-json.ts';
import { tableHandlers } from './table-handlers.ts';
import { loadTableProto } from './table-proto.ts';

export { GRPC_SCAN_PAGE_BYTES_MAX } from './limits.ts';

/**
 * Largest request message, in bytes: a compare-and-swap carries two values
 * of up to VALUE_BYTES_MAX each (as the HTTP body limit allows), plus a key
 * and framing; 64 KiB of slack covers both with room to spare.
 */
export const GRPC_REQUEST_BYTES_MAX = 2 * VALUE_BYTES_MAX + 64 * 1024;
/** Largest response message, in bytes: the default receive limit of a gRPC client (4 MiB). */
export const GRPC_RESPONSE_BYTES_MAX = 4 * 1024 * 1024;
/** Concurrent calls (HTTP/2 streams) per client connection. */
export const GRPC_STREAMS_PER_CONNECTION_MAX = 1024;
/** How long {@link GrpcServerHandle.close} lets calls in flight finish before cutting them, in ms. */
export const GRPC_CLOSE_GRACE_MS = 2_000;

/** A listening gRPC server. */
export interface GrpcServerHandle {
  /** The bound port (the chosen one when 0 was asked for). */
  readonly port: number;
  /**
   * Stops accepting calls, lets calls in flight finish for up to
   * GRPC_CLOSE_GRACE_MS, then cuts the rest. Idempotent.
   */
  close(): Promise<void>;
}

/** Optional settings of {@link startGrpcServer}. */
export interface GrpcServerOptions {
  /** Where exceptions that are not TesseraErrors (bugs) are logged. */
  readonly logger?: Pick<Logger, 'error'>;
}

/**
 * Serves `tessera.v1.KV` over `service` on `host:port` (plaintext; port 0
 * picks a free one), and `tessera.v1.Tables` too when `service` implements
 * {@link TableService}. Resolves once it listens; rejects if it cannot bind.
 */
export async function startGrpcServer(
  service: KvService & Partial<TableService>,
  host: string,
  port: number,
  options: GrpcServerOptions = {},
): Promise<GrpcServerHandle> {
  const server = new Server({
    'grpc.max_receive_message_length': GRPC_REQUEST_BYTES_MAX,
    'grpc.max_send_message_length': GRPC_RESPONSE_BYTES_MAX,
    'grpc.max_concurrent_streams': GRPC_STREAMS_PER_CONNECTION_MAX,
  });
  server.addService(loadKvService(), implementation(kvHandlers(service), service, options));
  if (isTableService(service)) {
    const tables = loadTableProto().service;
    server.addService(tables, implementation(tableHandlers(service), service, options));
  }
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, p) =>
      err === null ? resolve(p) : reject(err),
    );
  });
  let closed: Promise<void> | null = null;
  return {
    port: bound,
    close: () => (closed ??= shutdown(server)),
  };
}

/** Graceful shutdown bounded by GRPC_CLOSE_GRACE_MS. */
function shutdown(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, GRPC_CLOSE_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

/** Handlers (kv-handlers.ts, table-handlers.ts) as grpc-js unary calls: a rejection becomes a status. */
function implementation(
  handlers: Readonly<Record<string, ProtoHandler>>,
  service: KvService,
  options: GrpcServerOptions,
): UntypedServiceImplementation {
  const unary =
    (method: string, handle: ProtoHandler) =>
    (call: ServerUnaryCall<DecodedRequest, object>, callback: sendUnaryData<object>): void => {
      // A handler that throws synchronously becomes a rejection like any other.
      Promise.resolve()
        .then(() => handle(call.request ?? {}))
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            const e = asTesseraError(err);
            if (e !== err) options.logger?.error({ err, method }, 'gRPC handler failed');
            callback(grpcErrorOf(e, service));
          },
        );
    };
  const out: UntypedServiceImplementation = {};
  for (const [method, handle] of Object.entries(handlers)) out[method] = unary(method, handle);
  return out;
}
