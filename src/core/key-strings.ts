/**
 * Binary keys as strings whose order is the keys' byte order, for sorted
 * in-memory maps (the in-memory state engine, the reference key-value view).
 */

/** Largest chunk String.fromCharCode gets at once (stays far below argument-count limits). */
const CHAR_CODES_PER_CALL = 8192;

/**
 * A binary-safe string form of a key: one UTF-16 code unit (0..255) per
 * byte, so comparing the strings compares the keys bytewise.
 */
export function keyString(key: Uint8Array): string {
  if (key.length <= CHAR_CODES_PER_CALL) return String.fromCharCode(...key);
  let s = '';
  for (let i = 0; i < key.length; i += CHAR_CODES_PER_CALL) {
    s += String.fromCharCode(...key.subarray(i, i + CHAR_CODES_PER_CALL));
  }
  return s;
}

/** The first index in sorted `keys` whose key is >= `k`. */
export function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
