/**
 * A {@link KvView} of one key prefix of a range: the range's committed data
 * in the state engine, seen through the write set of the batch being
 * applied (if any). The table row logic (src/table/row-store.ts) runs over
 * it: while a command is applied its writes go to the batch, and reads see
 * the batch's earlier effects; between batches a read-only view serves reads.
 */
import { assert } from '../core/assert.ts';
import type { RangeId } from '../core/ids.ts';
import type { StateEngine } from '../storage/state-engine.ts';
import type { KvScanOptions, KvView } from '../table/kv-view.ts';
import { compareBytes, prefixEnd } from '../table/key-codec.ts';
import type { WriteSet } from './write-set.ts';

/** Engine pairs fetched per step while merging a scan with the write set. */
const ENGINE_PAGE_PAIRS = 256;

export class EngineKvView implements KvView {
  private readonly end: Uint8Array;

  /**
   * @param prefix the keys of this view, inside the range (prepended on the way in, cut on the way out)
   * @param batch the write set of the batch being applied; null for a read-only view
   */
  constructor(
    private readonly engine: StateEngine,
    private readonly range: RangeId,
    private readonly prefix: Uint8Array,
    private readonly batch: WriteSet | null,
  ) {
    this.end = prefixEnd(prefix);
  }

  /** {@inheritDoc KvView.get} */
  get(key: Uint8Array): Uint8Array | undefined {
    const full = this.full(key);
    const pending = this.batch?.get(full);
    if (pending !== undefined) return pending === null ? undefined : pending.slice();
    return this.engine.get(this.range, full);
  }

  /** {@inheritDoc KvView.put} */
  put(key: Uint8Array, value: Uint8Array): void {
    assert(this.batch !== null, 'a write through a read-only view');
    this.batch.set(this.full(key), value.slice());
  }

  /** {@inheritDoc KvView.delete} */
  delete(key: Uint8Array): void {
    assert(this.batch !== null, 'a write through a read-only view');
    this.batch.set(this.full(key), null);
  }

  /**
   * {@inheritDoc KvView.scan}
   * Merges the engine's pairs with the batch's changes (a pending delete
   * hides a stored pair, a pending put replaces or adds one). The result is
   * collected before it is returned, so later writes do not change it.
   */
  scan(
    start: Uint8Array,
    end: Uint8Array | null,
    options: KvScanOptions,
  ): Iterable<[Uint8Array, Uint8Array]> {
    const lo = this.full(start);
    const hi = end === null ? this.end : this.full(end);
    const out: [Uint8Array, Uint8Array][] = [];
    if (options.limit === 0 || compareBytes(lo, hi) >= 0) return out;
    const pending = this.batch?.changesIn(lo, hi) ?? [];
    if (options.reverse) pending.reverse();
    const sign = options.reverse ? -1 : 1;
    let p = 0;
    const emit = (key: Uint8Array, value: Uint8Array | null): void => {
      if (value !== null) out.push([key.slice(this.prefix.length), value.slice()]);
    };
    // Walk the engine in pages between lo and hi, narrowing the bound as it goes.
    let from = lo;
    let to = hi;
    for (;;) {
      const page = options.reverse
        ? this.engine.scanReverse(this.range, from, to, ENGINE_PAGE_PAIRS)
        : this.engine.scan(this.range, from, to, ENGINE_PAGE_PAIRS);
      for (const [k, v] of page) {
        // Pending changes that come before this stored key, in scan order.
        while (p < pending.length && sign * compareBytes(pending[p]!.key, k) < 0) {
          emit(pending[p]!.key, pending[p]!.value);
          p++;
          if (out.length >= options.limit) return out;
        }
        if (p < pending.length && compareBytes(pending[p]!.key, k) === 0) {
          emit(k, pending[p]!.value);
          p++;
        } else {
          emit(k, v);
        }
        if (out.length >= options.limit) return out;
      }
      if (page.length < ENGINE_PAGE_PAIRS) break;
      const last = page[page.length - 1]![0];
      if (options.reverse) to = last;
      else from = successor(last);
    }
    for (; p < pending.length && out.length < options.limit; p++) {
      emit(pending[p]!.key, pending[p]!.value);
    }
    return out;
  }

  private full(key: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.prefix.length + key.length);
    out.set(this.prefix);
    out.set(key, this.prefix.length);
    return out;
  }
}

/** The smallest key after `key`: `key` followed by a zero byte. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}
