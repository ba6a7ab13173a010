/**
 * The effects of a batch of entries before they are committed: reads during
 * the batch see them, and the batch ends in one state-engine commit.
 */

type Change = { key: Uint8Array; value: Uint8Array | null };

export class WriteSet {
  private readonly changes = new Map<string, Change>();
  /** While a savepoint is open: each key's change before its first write since then. */
  private undo: Map<string, Change | undefined> | null = null;

  /**
   * Opens a savepoint: {@link rollback} undoes every write after it (one
   * command that fails halfway leaves nothing behind); {@link release} keeps them.
   */
  savepoint(): void {
    this.undo = new Map();
  }

  /** Undoes the writes since the savepoint and closes it. */
  rollback(): void {
    for (const [k, prev] of this.undo ?? []) {
      if (prev === undefined) this.changes.delete(k);
      else this.changes.set(k, prev);
    }
    this.undo = null;
  }

  /** Keeps the writes since the savepoint and closes it. */
  release(): void {
    this.undo = null;
  }

  /** The pending value (null = deleted), or undefined if the batch did not touch `key`. */
  get(key: Uint8Array): Uint8Array | null | undefined {
    return this.changes.get(latin1(key))?.value;
  }

  set(key: Uint8Array, value: Uint8Array | null): void {
    const k = latin1(key);
    if (this.undo !== null && !this.undo.has(k)) this.undo.set(k, this.changes.get(k));
    this.changes.set(k, { key, value });
  }

  puts(): [Uint8Array, Uint8Array][] {
    const out: [Uint8Array, Uint8Array][] = [];
    for (const c of this.changes.values()) if (c.value !== null) out.push([c.key, c.value]);
    return out;
  }

  deletes(): Uint8Array[] {
    return [...this.changes.values()].filter((c) => c.value === null).map((c) => c.key);
  }

  /**
   * The changes (puts and deletes) with start <= key < end (end undefined:
   * no bound), in ascending key order.
   */
  changesIn(start: Uint8Array, end: Uint8Array | undefined): Change[] {
    const lo = latin1(start);
    const hi = end === undefined ? undefined : latin1(end);
    return [...this.changes.entries()]
      .filter(([k]) => k >= lo && (hi === undefined || k < hi))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, c]) => c);
  }
}

/** A binary-safe string form of a key; latin1 code-unit order is byte order. */
const latin1 = (key: Uint8Array): string =>
  Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
