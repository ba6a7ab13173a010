/**
 * The registry of operational errors. A programmer error is an assertion
 * failure (see assert.ts) and crashes; everything a caller may legitimately
 * see and react to is a {@link TesseraError} whose `code` is a key of
 * {@link ERROR_CODES}. Each code fixes, once and for all, whether a retry is
 * safe and which HTTP and gRPC status it maps to, so every transport and
 * every client agrees. docs/errors.md documents the same table; the test in
 * test/core/errors.test.ts fails when the two disagree.
 *
 * Codes are part of the public API: never rename or reuse one, never change
 * its retry class once released. Add a new code instead.
 */
import { assert } from './assert.ts';

/**
 * Whether the caller may send the same request again.
 *
 * - `'yes'`: the request was definitely NOT applied; retrying it as-is is
 *   safe (after backoff, or after following a leader/range hint).
 * - `'with-idempotency-key'`: the outcome is unknown; the request may or may
 *   not have been applied. Retry only with the same idempotency key (so a
 *   duplicate is detected and answered from the first attempt), or read back
 *   to learn what happened.
 * - `'no'`: the same request gets the same answer; change the request or the
 *   state it depends on first.
 */
export type Retryable = 'yes' | 'no' | 'with-idempotency-key';

/** All retry classes, for validation and tests. */
export const RETRYABLE_VALUES: readonly Retryable[] = ['yes', 'no', 'with-idempotency-key'];

/** The canonical gRPC status code names (grpc/doc/statuscodes.md), except OK. */
export const GRPC_STATUS_NAMES = [
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** A gRPC status code name other than OK. */
export type GrpcStatus = (typeof GRPC_STATUS_NAMES)[number];

/** What the registry records about one error code. */
export interface ErrorSpec<C extends string = string> {
  /** Stable SCREAMING_SNAKE identifier; equal to its key in {@link ERROR_CODES}. */
  readonly code: C;
  /** Default human-readable message, used when the thrower supplies none. */
  readonly message: string;
  /** Whether and how the request may be retried; see {@link Retryable}. */
  readonly retryable: Retryable;
  /** HTTP status for the JSON/HTTP API (4xx or 5xx). */
  readonly httpStatus: number;
  /** gRPC status code name for the gRPC API. */
  readonly grpcStatus: GrpcStatus;
}

/** Checks at compile time that every entry's `code` equals its key; freezes at run time. */
function defineErrors<T extends { readonly [K in keyof T]: ErrorSpec<K & string> }>(
  specs: T,
): Readonly<T> {
  for (const spec of Object.values<ErrorSpec>(specs)) Object.freeze(spec);
  return Object.freeze(specs);
}

/**
 * Every operational error code. Keep in sync with docs/errors.md (the unit
 * test enforces it).
 */
export const ERROR_CODES = defineErrors({
  NOT_LEADER: {
    code: 'NOT_LEADER',
    message: 'this node is not the leader; retry against details.leaderHint if set',
    retryable: 'yes',
    httpStatus: 421,
    grpcStatus: 'UNAVAILABLE',
  },
  PROPOSAL_DROPPED: {
    code: 'PROPOSAL_DROPPED',
    message: 'proposal dropped before it entered the log (no leader, or leadership transfer)',
    retryable: 'yes',
    httpStatus: 503,
    grpcStatus: 'UNAVAILABLE',
  },
  WRONG_RANGE: {
    code: 'WRONG_RANGE',
    message: 'the key is not served by this range (split, merge or move); refresh routing',
    retryable: 'yes',
    httpStatus: 421,
    grpcStatus: 'UNAVAILABLE',
  },
  OUTCOME_UNKNOWN: {
    code: 'OUTCOME_UNKNOWN',
    message: 'the request may or may not have been applied',
    retryable: 'with-idempotency-key',
    httpStatus: 504,
    grpcStatus: 'UNKNOWN',
  },
  TIMEOUT: {
    code: 'TIMEOUT',
    message: 'deadline exceeded before the request could have been applied',
    retryable: 'yes',
    httpStatus: 504,
    grpcStatus: 'DEADLINE_EXCEEDED',
  },
  INVALID_ARGUMENT: {
    code: 'INVALID_ARGUMENT',
    message: 'the request is malformed or an argument is out of its domain',
    retryable: 'no',
    httpStatus: 400,
    grpcStatus: 'INVALID_ARGUMENT',
  },
  INVALID_SCHEMA: {
    code: 'INVALID_SCHEMA',
    message: 'the table schema or a change to it is invalid',
    retryable: 'no',
    httpStatus: 400,
    grpcStatus: 'INVALID_ARGUMENT',
  },
  KEY_TOO_LARGE: {
    code: 'KEY_TOO_LARGE',
    message: 'the key exceeds the maximum key size',
    retryable: 'no',
    httpStatus: 413,
    grpcStatus: 'INVALID_ARGUMENT',
  },
  VALUE_TOO_LARGE: {
    code: 'VALUE_TOO_LARGE',
    message: 'the value exceeds the maximum value size',
    retryable: 'no',
    httpStatus: 413,
    grpcStatus: 'INVALID_ARGUMENT',
  },
  REQUEST_TOO_LARGE: {
    code: 'REQUEST_TOO_LARGE',
    message: 'the request exceeds the maximum request size',
    retryable: 'no',
    httpStatus: 413,
    grpcStatus: 'INVALID_ARGUMENT',
  },
  CONDITION_FAILED: {
    code: 'CONDITION_FAILED',
    message: 'a condition of the request (compare, expected version) does not hold',
    retryable: 'no',
    httpStatus: 412,
    grpcStatus: 'ABORTED',
  },
  NOT_FOUND: {
    code: 'NOT_FOUND',
    message: 'the key, row, table or resource does not exist',
    retryable: 'no',
    httpStatus: 404,
    grpcStatus: 'NOT_FOUND',
  },
  ALREADY_EXISTS: {
    code: 'ALREADY_EXISTS',
    message: 'the key, row, table or resource already exists',
    retryable: 'no',
    httpStatus: 409,
    grpcStatus: 'ALREADY_EXISTS',
  },
  COMPACTED: {
    code: 'COMPACTED',
    message: 'the requested revision has been compacted away',
    retryable: 'no',
    httpStatus: 410,
    grpcStatus: 'OUT_OF_RANGE',
  },
  CONF_CHANGE_IN_PROGRESS: {
    code: 'CONF_CHANGE_IN_PROGRESS',
    message: 'a membership change is already in progress; retry after it completes',
    retryable: 'yes',
    httpStatus: 409,
    grpcStatus: 'ABORTED',
  },
  UNAVAILABLE: {
    code: 'UNAVAILABLE',
    message: 'the service cannot take the request now (no quorum, starting or stopping)',
    retryable: 'yes',
    httpStatus: 503,
    grpcStatus: 'UNAVAILABLE',
  },
  RESOURCE_EXHAUSTED: {
    code: 'RESOURCE_EXHAUSTED',
    message: 'a bounded queue or limit is full; back off and retry',
    retryable: 'yes',
    httpStatus: 429,
    grpcStatus: 'RESOURCE_EXHAUSTED',
  },
  UNIMPLEMENTED: {
    code: 'UNIMPLEMENTED',
    message: 'the operation is not implemented',
    retryable: 'no',
    httpStatus: 501,
    grpcStatus: 'UNIMPLEMENTED',
  },
  CORRUPTION: {
    code: 'CORRUPTION',
    message: 'stored or received data failed its checksum',
    retryable: 'no',
    httpStatus: 500,
    grpcStatus: 'DATA_LOSS',
  },
  INTERNAL: {
    code: 'INTERNAL',
    message: 'internal error',
    retryable: 'no',
    httpStatus: 500,
    grpcStatus: 'INTERNAL',
  },
});

/** The union of all registered error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Structured, machine-readable context of an error, e.g. `{ leaderHint: 3 }`. */
export type ErrorDetails = Readonly<Record<string, unknown>>;

/** Well-known detail fields, by code. Other codes take any {@link ErrorDetails}. */
export interface KnownErrorDetails {
  /** NOT_LEADER: the node believed to be leader, if known. */
  readonly leaderHint?: number;
  /** WRONG_RANGE: the range the request was addressed to. */
  readonly rangeId?: number;
  /** *_TOO_LARGE, RESOURCE_EXHAUSTED: the limit that was exceeded and the actual size. */
  readonly limit?: number;
  readonly actual?: number;
}

/**
 * An operational error: something a caller can expect and handle. Its
 * `retryable`, `httpStatus` and `grpcStatus` always come from the registry
 * entry of `code`, never from the thrower.
 */
export class TesseraError extends Error {
  override readonly name = 'TesseraError';
  /** Stable identifier; a key of {@link ERROR_CODES}. */
  readonly code: ErrorCode;
  /** Whether and how the request may be retried. */
  readonly retryable: Retryable;
  /** HTTP status for this error. */
  readonly httpStatus: number;
  /** gRPC status code name for this error. */
  readonly grpcStatus: GrpcStatus;
  /** Optional structured context (never needed to decide on a retry). */
  readonly details: (ErrorDetails & KnownErrorDetails) | undefined;

  /**
   * @param code a registered code; an unregistered one is a programmer error
   *   and throws an AssertionError.
   * @param message overrides the registry's default message.
   * @param details structured context, e.g. `{ leaderHint }` for NOT_LEADER.
   */
  constructor(code: ErrorCode, message?: string, details?: ErrorDetails & KnownErrorDetails) {
    const spec: ErrorSpec | undefined = Object.hasOwn(ERROR_CODES, code)
      ? ERROR_CODES[code]
      : undefined;
    assert(spec !== undefined, () => `unregistered error code: ${String(code)}`);
    super(message ?? spec.message);
    this.code = code;
    this.retryable = spec.retryable;
    this.httpStatus = spec.httpStatus;
    this.grpcStatus = spec.grpcStatus;
    this.details = details === undefined ? undefined : Object.freeze({ ...details });
  }

  /** The wire form of the error, as the HTTP API sends it in a response body. */
  toJSON(): {
    code: ErrorCode;
    message: string;
    retryable: Retryable;
    details?: ErrorDetails;
  } {
    const json = { code: this.code, message: this.message, retryable: this.retryable };
    return this.details === undefined ? json : { ...json, details: this.details };
  }
}

/** True if `e` is a {@link TesseraError} (narrows the type). */
export function isTesseraError(e: unknown): e is TesseraError {
  return e instanceof TesseraError;
}

/** True if `e` is a {@link TesseraError} that may be retried as-is ('yes'). */
export function isSafeToRetry(e: unknown): boolean {
  return isTesseraError(e) && e.retryable === 'yes';
}
