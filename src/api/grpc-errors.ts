/**
 * How a failed gRPC call reports its error: the gRPC status of the Tessera
 * error code (core/errors.ts registry), its message, and trailing metadata
 * that carries what a status code alone cannot:
 *
 *   tessera-code         the registry code (e.g. NOT_LEADER, VALUE_TOO_LARGE)
 *   tessera-retryable    'yes' | 'no' | 'with-idempotency-key'
 *   tessera-leader-id    NOT_LEADER with a known leader: its node id
 *   tessera-leader-http  NOT_LEADER with a known leader address: its HTTP host:port
 *
 * Anything that is not a TesseraError is a bug behind the API: it becomes
 * INTERNAL with a generic message (nothing of the exception leaks).
 */
import { Metadata, status, type ServerErrorResponse } from '@grpc/grpc-js';
import { TesseraError, isTesseraError } from '../core/errors.ts';
import type { NodeId } from '../core/ids.ts';
import type { KvService } from './http-api.ts';

/** Trailing-metadata keys (gRPC metadata keys are lower-case ASCII). */
export const METADATA_CODE = 'tessera-code';
export const METADATA_RETRYABLE = 'tessera-retryable';
export const METADATA_LEADER_ID = 'tessera-leader-id';
export const METADATA_LEADER_HTTP = 'tessera-leader-http';

/** `err` as a TesseraError: itself, or INTERNAL for anything else. */
export function asTesseraError(err: unknown): TesseraError {
  return isTesseraError(err) ? err : new TesseraError('INTERNAL', 'internal error');
}

/**
 * The gRPC error for a TesseraError. `service` resolves a NOT_LEADER hint
 * (a node id) to the leader's HTTP address.
 */
export function grpcErrorOf(
  e: TesseraError,
  service: Pick<KvService, 'httpAddressOf'>,
): ServerErrorResponse {
  const metadata = new Metadata();
  metadata.set(METADATA_CODE, e.code);
  metadata.set(METADATA_RETRYABLE, e.retryable);
  const hint = e.details?.leaderHint;
  if (e.code === 'NOT_LEADER' && typeof hint === 'number' && hint !== 0) {
    metadata.set(METADATA_LEADER_ID, String(hint));
    const http = service.httpAddressOf(hint as NodeId);
    if (http !== null) metadata.set(METADATA_LEADER_HTTP, http);
  }
  return Object.assign(new Error(e.message), {
    code: status[e.grpcStatus],
    details: e.message,
    metadata,
  });
}
