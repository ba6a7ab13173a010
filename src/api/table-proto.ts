/**
 * The `tessera.v1.Tables` service definition, loaded at run time from
 * proto/tessera/v1/table.proto with @grpc/proto-loader and the same
 * {@link KV_PROTO_LOADER_OPTIONS} as kv.proto (64-bit integers as decimal
 * strings, enums by name, absent fields `undefined`, bytes as Buffers).
 * table.proto imports kv.proto (for Session and Consistency), so the
 * proto/ directory is the include path.
 */
import { fileURLToPath } from 'node:url';
import { loadSync, type ServiceDefinition } from '@grpc/proto-loader';
import { KV_PROTO_LOADER_OPTIONS } from './kv-proto.ts';
import type { ProtoSchema } from './proto-json.ts';

/** Absolute path of the .proto file. */
export const TABLE_PROTO_PATH = fileURLToPath(
  new URL('../../proto/tessera/v1/table.proto', import.meta.url),
);

/** The directory that imports inside the .proto files resolve against. */
export const PROTO_INCLUDE_DIR = fileURLToPath(new URL('../../proto', import.meta.url));

/** Fully qualified name of the service inside the .proto file. */
export const TABLE_SERVICE_NAME = 'tessera.v1.Tables';

/**
 * The rpcs of `tessera.v1.Tables`, named as in the .proto. Kept by hand in
 * step with the file: protoJsonRoutes (proto-json.ts) fails its assertion at
 * startup when the loaded service has an rpc without a handler.
 */
export type TableMethod =
  | 'CreateTable'
  | 'DescribeTable'
  | 'ListTables'
  | 'AlterTable'
  | 'DropTable'
  | 'PutRow'
  | 'GetRow'
  | 'UpdateRow'
  | 'DeleteRow'
  | 'GetRange'
  | 'BatchGetRow'
  | 'BatchWriteRow';

/** Loads table.proto (synchronously: it runs once at startup). */
export function loadTableProto(): ProtoSchema {
  const types = loadSync(TABLE_PROTO_PATH, {
    ...KV_PROTO_LOADER_OPTIONS,
    includeDirs: [PROTO_INCLUDE_DIR],
  });
  const service = types[TABLE_SERVICE_NAME];
  if (service === undefined || !('PutRow' in service)) {
    throw new Error(`${TABLE_PROTO_PATH} does not define service ${TABLE_SERVICE_NAME}`);
  }
  return { service: service as ServiceDefinition, types };
}
