/**
 * Validation of requests in the decoded shape of kv.proto (kv-proto.ts
 * DecodedRequest), with the limits of limits.ts and the error codes of
 * docs/api.md. The handlers (kv-handlers.ts) are the only callers, so every
 * API of a node (gRPC, the JSON routes of the proto and the REST routes)
 * validates here and nowhere else.
 *
 * Every check throws a {@link TesseraError} (INVALID_ARGUMENT,
 * KEY_TOO_LARGE or VALUE_TOO_LARGE) and never anything else.
 */
import { TesseraError } from '../core/errors.ts';
import { KEY_BYTES_MAX, SCAN_LIMIT_DEFAULT, SCAN_LIMIT_MAX, VALUE_BYTES_MAX } from './limits.ts';

/** A write session: both ids present, each 1 to 2^53 - 1. */
export interface SessionIds {
  readonly client: number;
  readonly seq: number;
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', message);
}

/** A proto3 string field: absent means `''`. */
function stringField(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw invalid(`${field} must be a string`);
  return v;
}

/** A key: 1 to KEY_BYTES_MAX UTF-8 bytes. */
export function checkKey(v: unknown, field = 'key'): string {
  const key = stringField(v, field);
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes === 0) throw invalid(`${field} must not be empty`);
  if (bytes > KEY_BYTES_MAX) {
    throw new TesseraError('KEY_TOO_LARGE', undefined, { limit: KEY_BYTES_MAX, actual: bytes });
  }
  return key;
}

/** A scan bound: 0 to KEY_BYTES_MAX UTF-8 bytes; null where absent and `optional`. */
export function checkKeyBound(v: unknown, field: string, optional: boolean): string | null {
  if ((v === undefined || v === null) && optional) return null;
  const bound = stringField(v, field);
  const bytes = Buffer.byteLength(bound, 'utf8');
  if (bytes > KEY_BYTES_MAX) {
    throw new TesseraError('KEY_TOO_LARGE', `${field} is longer than ${KEY_BYTES_MAX} bytes`, {
      limit: KEY_BYTES_MAX,
      actual: bytes,
    });
  }
  return bound;
}

/** A value of at most VALUE_BYTES_MAX UTF-8 bytes; null where absent and `optional`. */
export function checkValue(v: unknown, field: string, optional: boolean): string | null {
  if ((v === undefined || v === null) && optional) return null;
  const value = stringField(v, field);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > VALUE_BYTES_MAX) {
    throw new TesseraError('VALUE_TOO_LARGE', `${field} is longer than ${VALUE_BYTES_MAX} bytes`, {
      limit: VALUE_BYTES_MAX,
      actual: bytes,
    });
  }
  return value;
}

/** A scan limit: 1 to SCAN_LIMIT_MAX; SCAN_LIMIT_DEFAULT when absent. */
export function checkLimit(v: unknown): number {
  if (v === undefined || v === null) return SCAN_LIMIT_DEFAULT;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > SCAN_LIMIT_MAX) {
    throw invalid(`limit must be an integer from 1 to ${SCAN_LIMIT_MAX}`);
  }
  return v;
}

/** True for LINEARIZABLE (also when absent), false for SERIALIZABLE. */
export function checkLinearizable(v: unknown): boolean {
  if (v === undefined || v === null || v === 'LINEARIZABLE') return true;
  if (v === 'SERIALIZABLE') return false;
  throw invalid('consistency must be LINEARIZABLE or SERIALIZABLE');
}

/** The session of a write, or null when the request carries none. */
export function checkSession(v: unknown): SessionIds | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object') throw invalid('session must be a message');
  const s = v as Record<string, unknown>;
  return { client: positiveId(s.client, 'session.client'), seq: positiveId(s.seq, 'session.seq') };
}

/** A uint64 decoded as a decimal string (or a number): 1 to 2^53 - 1, as the HTTP headers. */
function positiveId(v: unknown, field: string): number {
  const n =
    typeof v === 'string' && /^[1-9][0-9]{0,15}$/.test(v)
      ? Number(v)
      : typeof v === 'number'
        ? v
        : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw invalid(`${field} must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}`);
  }
  return n;
}
