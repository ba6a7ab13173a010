/**
 * Assertions state invariants. A failed assertion is a programmer error: it
 * throws {@link AssertionError} and is never caught to carry on. Operational
 * errors use `TesseraError` instead (see errors.ts).
 */

/** Thrown when an invariant does not hold. Never retried, never swallowed. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/** Throws {@link AssertionError} unless `condition` holds. */
export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new AssertionError(typeof message === 'function' ? message() : message);
  }
}

/** For exhaustive switches: the compiler proves this is unreachable; at run time it throws. */
export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
