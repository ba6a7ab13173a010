/**
 * Strict UTF-8 for table strings. JavaScript strings may hold lone UTF-16
 * surrogates, which UTF-8 cannot represent: `TextEncoder` silently replaces
 * them with U+FFFD, so a stored string would not read back equal and two
 * different keys could encode the same. Table strings must therefore be
 * well-formed Unicode; the checks here reject the rest.
 */
import { TesseraError } from '../core/errors.ts';

const encoder = new TextEncoder();
// fatal: malformed stored bytes are an error, never replacement characters.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// With the u flag a surrogate pair is one code point, so this matches lone surrogates only.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * The UTF-8 bytes of `s`. Throws `TesseraError('INVALID_ARGUMENT')` naming
 * `what` if `s` holds a lone surrogate (it has no UTF-8 form).
 */
export function utf8Encode(s: string, what: string): Uint8Array {
  if (LONE_SURROGATE.test(s)) {
    throw new TesseraError(
      'INVALID_ARGUMENT',
      `${what}: string holds a lone UTF-16 surrogate and has no UTF-8 form`,
    );
  }
  return encoder.encode(s);
}

/**
 * The string whose UTF-8 bytes are `bytes`. Throws
 * `TesseraError('INVALID_ARGUMENT')` naming `what` if they are not valid UTF-8.
 */
export function utf8Decode(bytes: Uint8Array, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new TesseraError('INVALID_ARGUMENT', `${what}: bytes are not valid UTF-8`);
  }
}
