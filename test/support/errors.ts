/** Assertions on the errors of Tessera. */
import assert from 'node:assert/strict';
import { TesseraError } from '../../src/core/errors.ts';

/** Asserts that `fn` throws a TesseraError with `code` (and a message matching `message`). */
export function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TesseraError, `expected a TesseraError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}
