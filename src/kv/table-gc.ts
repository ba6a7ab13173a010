/**
 * Background garbage collection of table versions: versions beyond a
 * table's maxVersions and cells past their TTL are invisible at once (the
 * read rules), and removed later by `gc` commands that the range's leader
 * proposes, so every replica removes the same records at the same log
 * position. Before proposing, the leader counts locally what a `gc` command
 * would remove ({@link garbageIn}); a table with nothing to collect costs
 * no log entry, so an idle range stays quiet.
 */
import { assert } from '../core/assert.ts';
import type { KvScanOptions, KvView } from '../table/kv-view.ts';
import { gcRange, type TableOptions } from '../table/row-store.ts';

/** Counts deletes instead of making them: what a gc would remove. */
class DryRunView implements KvView {
  deletes = 0;

  constructor(private readonly inner: KvView) {}

  get(key: Uint8Array): Uint8Array | undefined {
    return this.inner.get(key);
  }

  put(): void {
    assert(false, 'garbage collection only deletes');
  }

  delete(): void {
    this.deletes++;
  }

  scan(start: Uint8Array, end: Uint8Array | null, options: KvScanOptions) {
    return this.inner.scan(start, end, options);
  }
}

/**
 * How many records a gc from `start` with `budget` would remove now, read
 * from `view` (a read-only view of the committed state).
 */
export function garbageIn(
  view: KvView,
  start: Uint8Array,
  opts: TableOptions,
  nowMs: number,
  budget: number,
): { removable: number; next: Uint8Array | null } {
  const dry = new DryRunView(view);
  const r = gcRange(dry, start, null, opts, nowMs, budget);
  return { removable: dry.deletes, next: r.next };
}
