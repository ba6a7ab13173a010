/**
 * Request and response limits shared by every API of a node: the JSON/HTTP
 * routes (http-api.ts), the JSON routes derived from the proto
 * (proto-json.ts) and gRPC (grpc-server.ts). They live apart from the
 * servers so that the request checks (request-checks.ts) can use them
 * without importing a server.
 */

/** Largest key, in UTF-8 bytes. */
export const KEY_BYTES_MAX = 1024;
/** Largest value, in UTF-8 bytes (the LMDB state engine's value limit). */
export const VALUE_BYTES_MAX = 1 << 20;
/** Largest HTTP request body: a maximal value with every byte JSON-escaped, plus slack. */
export const BODY_BYTES_MAX = 6 * VALUE_BYTES_MAX + 64 * 1024;
/** Rows per scan page when the request names no limit. */
export const SCAN_LIMIT_DEFAULT = 100;
/** The most rows a scan page may ask for. */
export const SCAN_LIMIT_MAX = 1000;
/** Bytes of keys and values per scan page of the REST API (a page holds at least one pair). */
export const SCAN_PAGE_BYTES_MAX = 4 << 20;
/**
 * Bytes of keys and values per scan page of the rpcs of kv.proto (gRPC and
 * their JSON routes). Less than SCAN_PAGE_BYTES_MAX by enough for protobuf
 * framing (about 11 bytes per pair, at most 1000 pairs) and the `next` key,
 * so that a page always fits the 4 MiB default receive limit of a gRPC
 * client; a page of one maximal pair fits as well.
 */
export const GRPC_SCAN_PAGE_BYTES_MAX = SCAN_PAGE_BYTES_MAX - 64 * 1024;
