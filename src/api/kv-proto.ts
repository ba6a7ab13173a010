/**
 * The `tessera.v1.KV` service definition, loaded at run time from
 * proto/tessera/v1/kv.proto with @grpc/proto-loader, and the decoded shapes
 * of its request messages. The server and every JavaScript client load it
 * with the same {@link KV_PROTO_LOADER_OPTIONS}, so both sides agree on how
 * 64-bit integers, enums and absent fields look in JavaScript.
 */
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition as GrpcServiceDefinition } from '@grpc/grpc-js';
import {
  loadSync,
  type Options,
  type PackageDefinition,
  type ServiceDefinition,
} from '@grpc/proto-loader';

/** Absolute path of the .proto file. */
export const KV_PROTO_PATH = fileURLToPath(
  new URL('../../proto/tessera/v1/kv.proto', import.meta.url),
);

/** Fully qualified name of the service inside the .proto file. */
export const KV_SERVICE_NAME = 'tessera.v1.KV';

/**
 * How decoded messages look:
 *
 * - `keepCase`: field names exactly as in the .proto (`last_index`).
 * - `longs: String`: every uint64 decodes as an exact decimal string, never a
 *   lossy double; on encode, numbers and decimal strings are both accepted.
 * - `enums: String`: known enum values decode as their names
 *   (`'SERIALIZABLE'`); an unknown number stays a number.
 * - `defaults: false`, `oneofs: false`: an absent field is `undefined`, which
 *   is how `optional` fields and the optional `session` express absence.
 *   Non-optional proto3 scalars that were not sent are `undefined` too and
 *   mean their zero value (`''`, `0`).
 */
export const KV_PROTO_LOADER_OPTIONS: Readonly<Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: false,
});

/**
 * The rpcs of `tessera.v1.KV`, named as in the .proto. Kept by hand in step
 * with the file: test/api/json-api.test.ts fails when the loaded service has
 * an rpc without a handler.
 */
export type KvMethod = 'Put' | 'Get' | 'Delete' | 'CompareAndSwap' | 'Scan' | 'Status';

/** The loaded .proto: the service and every message and enum type it uses. */
export interface KvProto {
  /** The `tessera.v1.KV` service: one method definition per rpc, keyed by rpc name. */
  readonly service: ServiceDefinition;
  /** Every type of the file by fully qualified name (`tessera.v1.Session`), with its descriptor. */
  readonly types: PackageDefinition;
}

/** Loads kv.proto (synchronously: it runs once at startup). */
export function loadKvProto(): KvProto {
  const types = loadSync(KV_PROTO_PATH, { ...KV_PROTO_LOADER_OPTIONS });
  const service = types[KV_SERVICE_NAME];
  if (service === undefined || !('Put' in service)) {
    throw new Error(`${KV_PROTO_PATH} does not define service ${KV_SERVICE_NAME}`);
  }
  return { service: service as ServiceDefinition, types };
}

/** Loads the `tessera.v1.KV` service definition (synchronously: it runs once at startup). */
export function loadKvService(): GrpcServiceDefinition {
  return loadKvProto().service;
}

/**
 * A request as decoded by {@link KV_PROTO_LOADER_OPTIONS}. Fields are typed
 * `unknown` on purpose: the handlers check every one (request-checks.ts)
 * instead of trusting the decoder.
 */
export type DecodedRequest = Readonly<Record<string, unknown>>;
