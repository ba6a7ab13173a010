/**
 * Flow control for a follower in replicate state: the appends sent but not yet
 * acknowledged, bounded both in count and in bytes.
 */
import type { LogIndex } from '../core/ids.ts';
import { assert } from '../core/assert.ts';

export class Inflights {
  /** Last index of each in-flight append, ascending. */
  private readonly indexes: number[] = [];
  /** Payload bytes of each in-flight append, aligned with `indexes`. */
  private readonly sizes: number[] = [];
  private bytes = 0;

  constructor(
    readonly countMax: number,
    readonly bytesMax: number,
  ) {
    assert(countMax > 0 && bytesMax > 0, 'inflight limits must be positive');
  }

  /** Records an append whose last entry is `index`, carrying `size` payload bytes. */
  add(index: LogIndex, size: number): void {
    assert(!this.full(), 'inflights: add while full');
    const last = this.indexes[this.indexes.length - 1];
    assert(last === undefined || index > last, 'inflights: indexes must ascend');
    this.indexes.push(index);
    this.sizes.push(size);
    this.bytes += size;
  }

  /** Frees every append whose last index is <= `index` (they were acknowledged). */
  freeLE(index: LogIndex): void {
    let n = 0;
    while (n < this.indexes.length && this.indexes[n]! <= index) {
      this.bytes -= this.sizes[n]!;
      n++;
    }
    if (n > 0) {
      this.indexes.splice(0, n);
      this.sizes.splice(0, n);
    }
  }

  /** Frees the oldest append (a heartbeat answer shows the follower is alive). */
  freeFirstOne(): void {
    const first = this.indexes[0];
    if (first !== undefined) this.freeLE(first as LogIndex);
  }

  /** True when no more appends may be sent: the count or the byte limit is reached. */
  full(): boolean {
    return this.indexes.length >= this.countMax || this.bytes >= this.bytesMax;
  }

  count(): number {
    return this.indexes.length;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}
