/**
 * The simulator's agenda: events ordered by virtual time, ties broken by
 * insertion order, so a run is a pure function of its seed.
 */

interface Event {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void;
}

/** A binary min-heap of timed callbacks. */
export class EventQueue {
  private readonly heap: Event[] = [];
  private seq = 0;
  /** Current virtual time in milliseconds. */
  now = 0;

  /** Runs `run` at virtual time `now + delayMs` (delay >= 0). */
  after(delayMs: number, run: () => void): void {
    this.push({ time: this.now + Math.max(0, delayMs), seq: this.seq++, run });
  }

  size(): number {
    return this.heap.length;
  }

  /** Runs the next event. Returns false when the agenda is empty. */
  step(): boolean {
    const e = this.pop();
    if (e === undefined) return false;
    this.now = e.time;
    e.run();
    return true;
  }

  /** The time of the next event, or Infinity. */
  peekTime(): number {
    return this.heap[0]?.time ?? Number.POSITIVE_INFINITY;
  }

  private less(a: Event, b: Event): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
