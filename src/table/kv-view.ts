/**
 * The ordered key-value view the table's row logic reads and writes. The row
 * store is pure: it sees storage only through this interface, so the same
 * code runs over {@link MemoryKvView} in tests and, later, over a range's
 * state-engine write set while a command is applied.
 */
import { keyString, lowerBound } from '../core/key-strings.ts';
import { assert } from '../core/assert.ts';
import { compareBytes } from '../storage/snapshot-stream.ts';

/** Options of {@link KvView.scan}. */
export interface KvScanOptions {
  /** Iterate from `end` downwards instead of from `start` upwards. */
  readonly reverse: boolean;
  /** Most pairs returned; a non-negative integer. */
  readonly limit: number;
}

/**
 * An ordered map from byte-string keys to byte-string values. Keys compare
 * as unsigned bytes, a prefix sorting first.
 *
 * Ownership: implementations copy keys and values on the way in and on the
 * way out, so callers never share buffers with the view.
 */
export interface KvView {
  /** The value stored at `key`, or undefined. */
  get(key: Uint8Array): Uint8Array | undefined;
  /** Stores `value` at `key`, replacing any previous value. */
  put(key: Uint8Array, value: Uint8Array): void;
  /** Removes `key`; removing an absent key does nothing. */
  delete(key: Uint8Array): void;
  /**
   * Pairs with `start <= key < end` (`end` null: no upper bound), at most
   * `options.limit` of them, in ascending key order, or in descending order
   * (from just below `end` down to `start`) when `options.reverse` is set.
   *
   * The result reflects the view when `scan` is called: writes made while
   * the caller iterates it do not change it.
   */
  scan(
    start: Uint8Array,
    end: Uint8Array | null,
    options: KvScanOptions,
  ): Iterable<[Uint8Array, Uint8Array]>;
}

/**
 * The reference {@link KvView}: a map plus a key list sorted on demand.
 * Deterministic (no hash-order dependence), meant for tests and small data.
 */
export class MemoryKvView implements KvView {
  private readonly pairs = new Map<string, readonly [Uint8Array, Uint8Array]>();
  /** Every key of `pairs` in order, or null after a key was added or removed. */
  private sortedKeys: readonly string[] | null = [];

  /** Number of stored pairs. */
  get size(): number {
    return this.pairs.size;
  }

  /** {@inheritDoc KvView.get} */
  get(key: Uint8Array): Uint8Array | undefined {
    const pair = this.pairs.get(keyString(key));
    return pair === undefined ? undefined : new Uint8Array(pair[1]);
  }

  /** {@inheritDoc KvView.put} */
  put(key: Uint8Array, value: Uint8Array): void {
    const k = keyString(key);
    if (!this.pairs.has(k)) this.sortedKeys = null;
    this.pairs.set(k, [new Uint8Array(key), new Uint8Array(value)]);
  }

  /** {@inheritDoc KvView.delete} */
  delete(key: Uint8Array): void {
    if (this.pairs.delete(keyString(key))) this.sortedKeys = null;
  }

  /** {@inheritDoc KvView.scan} */
  scan(
    start: Uint8Array,
    end: Uint8Array | null,
    options: KvScanOptions,
  ): Array<[Uint8Array, Uint8Array]> {
    assert(
      Number.isInteger(options.limit) && options.limit >= 0,
      () => `scan limit must be a non-negative integer, got ${options.limit}`,
    );
    const keys = this.sorted();
    const from = lowerBound(keys, keyString(start));
    const to = end === null ? keys.length : Math.max(from, lowerBound(keys, keyString(end)));
    const out: Array<[Uint8Array, Uint8Array]> = [];
    const n = Math.min(options.limit, to - from);
    for (let i = 0; i < n; i++) {
      const pair = this.pairs.get(keys[options.reverse ? to - 1 - i : from + i]!)!;
      out.push([new Uint8Array(pair[0]), new Uint8Array(pair[1])]);
    }
    return out;
  }

  /** Every pair in key order (copies), for tests and debugging. */
  entries(): Array<[Uint8Array, Uint8Array]> {
    return this.scan(new Uint8Array(0), null, { reverse: false, limit: this.pairs.size });
  }

  private sorted(): readonly string[] {
    // Code units are 0..255, so the default (UTF-16 code unit) order is byte order.
    this.sortedKeys ??= [...this.pairs.keys()].sort();
    return this.sortedKeys;
  }
}

/** Re-exported so table code compares keys exactly as every view orders them. */
export { compareBytes };
