/**
 * The integer type of the table model: signed 64-bit, carried as `bigint`.
 * A `bigint` can hold any integer, so every place that accepts one from a
 * caller checks it against this range before storing or encoding it.
 */
import { TesseraError } from '../core/errors.ts';

/** The smallest table integer, -2^63. */
export const INT64_MIN = -(2n ** 63n);

/** The largest table integer, 2^63 - 1. */
export const INT64_MAX = 2n ** 63n - 1n;

/** True if `v` is within {@link INT64_MIN}..{@link INT64_MAX}. */
export function isInt64(v: bigint): boolean {
  return v >= INT64_MIN && v <= INT64_MAX;
}

/**
 * Returns `v` if it is a signed 64-bit integer; otherwise throws
 * `TesseraError('INVALID_ARGUMENT')` naming `what` (e.g. "primary key column 1").
 */
export function checkInt64(v: bigint, what: string): bigint {
  if (!isInt64(v)) {
    throw new TesseraError(
      'INVALID_ARGUMENT',
      `${what}: integer ${v} is outside the signed 64-bit range ${INT64_MIN}..${INT64_MAX}`,
    );
  }
  return v;
}
