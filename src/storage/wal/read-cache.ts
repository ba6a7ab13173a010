/**
 * A small least-recently-used cache of whole segment files, so that loading
 * many groups at startup reads each segment once rather than once per group.
 * Bounded by bytes; a file larger than the bound is returned but not kept.
 */
import { assert } from '../../core/assert.ts';

export class SegmentReadCache {
  /** Insertion order is recency order: the first key is the least recently used. */
  private readonly files = new Map<number, Uint8Array>();
  private bytes = 0;

  /** @param bytesMax most bytes kept at once. */
  constructor(private readonly bytesMax: number) {
    assert(Number.isInteger(bytesMax) && bytesMax >= 0, () => `bad cache size ${bytesMax}`);
  }

  /** The content of segment `seq`, from the cache or from `read()`. */
  get(seq: number, read: () => Uint8Array): Uint8Array {
    const hit = this.files.get(seq);
    if (hit !== undefined) {
      this.files.delete(seq);
      this.files.set(seq, hit);
      return hit;
    }
    const data = read();
    if (data.length <= this.bytesMax) {
      this.evictFor(data.length);
      this.files.set(seq, data);
      this.bytes += data.length;
    }
    return data;
  }

  /** Forgets segment `seq` (it was appended to, truncated or deleted). */
  invalidate(seq: number): void {
    const data = this.files.get(seq);
    if (data === undefined) return;
    this.files.delete(seq);
    this.bytes -= data.length;
  }

  clear(): void {
    this.files.clear();
    this.bytes = 0;
  }

  private evictFor(incoming: number): void {
    for (const [seq, data] of this.files) {
      if (this.bytes + incoming <= this.bytesMax) return;
      this.files.delete(seq);
      this.bytes -= data.length;
    }
  }
}
