// The conformance suite every LogStorage implementation runs against itself
// (like openraft's storage test suite): unit cases for each rule of the
// interface, reopen cases for persistent implementations, and a property
// test that drives random operation sequences against MemoryLogStorage as
// the reference model. fast-check runs with a fixed seed so runs never vary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { AssertionError } from '../../src/core/assert.ts';
import type { RangeId } from '../../src/core/ids.ts';
import { logIndex, NO_NODE, nodeId, rangeId, term } from '../../src/core/ids.ts';
import type { ConfChange, Entry, HardState, SnapshotMeta } from '../../src/raft/types.ts';
import type { GroupWrite, LogStorage } from '../../src/storage/log-storage.ts';
import { MemoryLogStorage } from '../../src/storage/memory-log-storage.ts';

/** Opens one storage instance; `reopen` opens it again after `close()` (persistent ones only). */
export interface LogStorageFactory {
  open(): LogStorage;
  /** Opens the same storage again after close(); omitted by volatile implementations. */
  reopen?(): LogStorage;
  /** Releases what the factory made (temporary directories). */
  dispose?(): void;
}

/** Property runs of the random-operations test. */
const PROPERTY_RUNS = 100;
const PROPERTY_SEED = 20240611;

const g1 = rangeId(1);
const g2 = rangeId(2);
const g3 = rangeId(7);

/** An entry; `data` defaults to bytes derived from index and term. */
export function ent(index: number, t: number, data?: Uint8Array, confChange?: ConfChange): Entry {
  const base = {
    index: logIndex(index),
    term: term(t),
    type: confChange === undefined ? ('normal' as const) : ('conf-change' as const),
    data: data ?? new Uint8Array([index & 0xff, t & 0xff, 0xab]),
  };
  return confChange === undefined ? base : { ...base, confChange };
}

/** Entries lo..hi (inclusive) of term t. */
export function ents(lo: number, hi: number, t: number): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(ent(i, t));
  return out;
}

export function hs(t: number, vote: number, commit: number): HardState {
  return { term: term(t), vote: nodeId(vote), commit: logIndex(commit) };
}

export function snap(index: number, t: number, voters: number[] = [1, 2, 3]): SnapshotMeta {
  return {
    index: logIndex(index),
    term: term(t),
    conf: { voters: voters.map(nodeId), votersOutgoing: [], learners: [] },
  };
}

const EMPTY = { hardState: hs(0, NO_NODE, 0), snapshot: null, entries: [] };

/** Registers the conformance tests of a LogStorage implementation. */
export function runLogStorageSuite(name: string, makeFactory: () => LogStorageFactory): void {
  /** Runs `body` on a fresh storage, closing and disposing it afterwards. */
  function withStorage(body: (s: LogStorage, f: LogStorageFactory) => LogStorage | void): void {
    const f = makeFactory();
    let s = f.open();
    try {
      s = body(s, f) ?? s;
    } finally {
      s.close();
      f.dispose?.();
    }
  }

  describe(`LogStorage suite: ${name}`, () => {
    it('write + sync, then load', () =>
      withStorage((s) => {
        s.write([{ group: g1, entries: ents(1, 3, 1), hardState: hs(1, 1, 2) }]);
        s.sync();
        assert.deepEqual(s.load(g1), {
          hardState: hs(1, 1, 2),
          snapshot: null,
          entries: ents(1, 3, 1),
        });
        assert.deepEqual(s.groups(), [g1]);
      }));

    it('reads see staged writes before sync', () =>
      withStorage((s) => {
        s.write([{ group: g1, entries: ents(1, 2, 1) }]);
        assert.deepEqual(s.load(g1).entries, ents(1, 2, 1));
        s.write([{ group: g1, entries: ents(3, 3, 1) }]);
        s.sync();
        s.write([{ group: g1, entries: ents(2, 2, 2) }]);
        assert.deepEqual(s.load(g1).entries, [...ents(1, 1, 1), ...ents(2, 2, 2)]);
      }));

    it('an unknown group loads empty and is not listed', () =>
      withStorage((s) => {
        assert.deepEqual(s.load(g2), EMPTY);
        s.write([{ group: g2 }]);
        assert.deepEqual(s.groups(), []);
      }));

    it('conflicting entries replace the stored suffix', () =>
      withStorage((s) => {
        s.write([{ group: g1, entries: ents(1, 5, 1) }]);
        s.sync();
        s.write([{ group: g1, entries: ents(3, 4, 2) }]);
        s.sync();
        assert.deepEqual(s.load(g1).entries, [...ents(1, 2, 1), ...ents(3, 4, 2)]);
        s.write([{ group: g1, entries: ents(1, 1, 3) }]);
        s.sync();
        assert.deepEqual(s.load(g1).entries, ents(1, 1, 3));
      }));

    it('appending past the end (a gap) or non-contiguous entries is a programmer error', () =>
      withStorage((s) => {
        s.write([{ group: g1, entries: ents(1, 2, 1) }]);
        assert.throws(() => s.write([{ group: g1, entries: ents(4, 4, 1) }]), AssertionError);
        assert.throws(
          () => s.write([{ group: g2, entries: [ent(1, 1), ent(3, 1)] }]),
          AssertionError,
        );
      }));

    it('the latest hard state wins', () =>
      withStorage((s) => {
        s.write([{ group: g1, hardState: hs(1, 2, 0) }]);
        s.write([{ group: g1, hardState: hs(2, 0, 0) }]);
        s.sync();
        s.write([{ group: g1, hardState: hs(3, 3, 0) }]);
        s.sync();
        assert.deepEqual(s.load(g1), { hardState: hs(3, 3, 0), snapshot: null, entries: [] });
      }));

    it('a snapshot marker drops covered entries and keeps those that follow it', () =>
      withStorage((s) => {
        s.write([{ group: g1, entries: ents(1, 5, 1) }]);
        s.write([{ group: g1, snapshot: snap(3, 1) }]);
        s.sync();
        assert.deepEqual(s.load(g1), {
          hardState: EMPTY.hardState,
          snapshot: snap(3, 1),
          entries: ents(4, 5, 1),
        });
      }));

    it('a snapshot marker whose term differs drops every entry', () =>
      withStorage((s) => {
        s.write([{ group: g1, entries: ents(1, 5, 1) }]);
        s.write([{ group: g1, snapshot: snap(4, 2) }]);
        s.sync();
        assert.deepEqual(s.load(g1).entries, []);
        s.write([{ group: g1, entries: ents(5, 6, 2) }]);
        s.sync();
        assert.deepEqual(s.load(g1), {
          hardState: EMPTY.hardState,
          snapshot: snap(4, 2),
          entries: ents(5, 6, 2),
        });
      }));

    it('a snapshot beyond the last entry, then entries after it, in one write', () =>
      withStorage((s) => {
        s.write([{ group: g1, entries: ents(1, 2, 1) }]);
        s.write([
          { group: g1, snapshot: snap(10, 3), entries: ents(11, 12, 3), hardState: hs(3, 1, 10) },
        ]);
        s.sync();
        assert.deepEqual(s.load(g1), {
          hardState: hs(3, 1, 10),
          snapshot: snap(10, 3),
          entries: ents(11, 12, 3),
        });
        assert.throws(() => s.write([{ group: g1, entries: ents(10, 10, 3) }]), AssertionError);
        assert.throws(() => s.write([{ group: g1, snapshot: snap(9, 3) }]), AssertionError);
      }));

    it('entries carry conf changes and arbitrary data', () =>
      withStorage((s) => {
        const cc: ConfChange = {
          kind: 'change',
          steps: [
            { type: 'add-voter', node: nodeId(4) },
            { type: 'remove-node', node: nodeId(2) },
            { type: 'add-learner', node: nodeId(2 ** 40) },
          ],
        };
        const es = [
          ent(1, 1, new Uint8Array(0)),
          ent(2, 1, new Uint8Array(0), cc),
          ent(3, 1, new Uint8Array(0), { kind: 'leave-joint' }),
          ent(
            4,
            2 ** 50,
            new Uint8Array(3000).map((_, i) => i * 7),
          ),
        ];
        s.write([{ group: rangeId(2 ** 52), entries: es }]);
        s.sync();
        assert.deepEqual(s.load(rangeId(2 ** 52)).entries, es);
      }));

    it('groups are independent when interleaved', () =>
      withStorage((s) => {
        s.write([
          { group: g1, entries: ents(1, 3, 1) },
          { group: g2, entries: ents(1, 2, 5), hardState: hs(5, 2, 1) },
        ]);
        s.sync();
        s.write([
          { group: g3, snapshot: snap(7, 2) },
          { group: g1, entries: ents(2, 2, 2) },
        ]);
        s.write([{ group: g2, entries: ents(3, 3, 5) }]);
        s.sync();
        assert.deepEqual(s.groups(), [g1, g2, g3]);
        assert.deepEqual(s.load(g1).entries, [...ents(1, 1, 1), ...ents(2, 2, 2)]);
        assert.deepEqual(s.load(g2), {
          hardState: hs(5, 2, 1),
          snapshot: null,
          entries: ents(1, 3, 5),
        });
        assert.deepEqual(s.load(g3), {
          hardState: EMPTY.hardState,
          snapshot: snap(7, 2),
          entries: [],
        });
      }));

    it('compact drops entries up to the index and is idempotent', () =>
      withStorage((s) => {
        s.write([{ group: g1, entries: ents(1, 6, 1), snapshot: undefined }]);
        s.write([{ group: g1, snapshot: snap(4, 1) }]);
        s.compact(g1, 2); // already covered by the marker: no-op
        s.compact(g1, 4);
        s.sync();
        assert.deepEqual(s.load(g1), {
          hardState: EMPTY.hardState,
          snapshot: snap(4, 1),
          entries: ents(5, 6, 1),
        });
        s.compact(g1, 5); // past the marker: entries start after it
        s.sync();
        assert.deepEqual(s.load(g1).entries, ents(6, 6, 1));
        s.compact(g1, 0);
        s.compact(rangeId(99), 0);
        assert.throws(() => s.compact(g1, 7), AssertionError);
        s.write([{ group: g1, entries: ents(7, 7, 1) }]);
        assert.deepEqual(s.load(g1).entries, ents(6, 7, 1));
      }));

    it('reopen keeps everything synced and drops what was not', (t) => {
      if (makeFactory().reopen === undefined) {
        t.skip('volatile implementation');
        return;
      }
      withStorage((s, f) => {
        s.write([
          { group: g1, entries: ents(1, 4, 1), hardState: hs(1, 1, 3) },
          { group: g2, snapshot: snap(5, 2), entries: ents(6, 6, 2) },
        ]);
        s.sync();
        s.compact(g1, 2);
        s.write([{ group: g1, entries: ents(4, 5, 2) }]);
        s.sync();
        s.write([
          { group: g2, entries: ents(7, 9, 2) },
          { group: g3, hardState: hs(9, 9, 0) },
        ]);
        s.compact(g1, 4);
        s.close();
        const r = f.reopen!();
        assert.deepEqual(r.groups(), [g1, g2]);
        assert.deepEqual(r.load(g1), {
          hardState: hs(1, 1, 3),
          snapshot: null,
          entries: [...ents(3, 3, 1), ...ents(4, 5, 2)],
        });
        assert.deepEqual(r.load(g2), {
          hardState: EMPTY.hardState,
          snapshot: snap(5, 2),
          entries: ents(6, 6, 2),
        });
        r.write([{ group: g2, entries: ents(7, 7, 3) }]);
        r.sync();
        r.close();
        const again = f.reopen!();
        assert.deepEqual(again.load(g2).entries, [...ents(6, 6, 2), ...ents(7, 7, 3)]);
        return again;
      });
    });

    it('property: random operations match MemoryLogStorage, after every sync and reopen', () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }), (ops) => {
          const f = makeFactory();
          try {
            runModelCheck(f, ops);
          } finally {
            f.dispose?.();
          }
        }),
        { numRuns: PROPERTY_RUNS, seed: PROPERTY_SEED },
      );
    });
  });
}

// ---------------------------------------------------------------------------
// The property test: abstract operations, turned into valid concrete writes
// against the model's current state.

const GROUPS = [rangeId(1), rangeId(2), rangeId(3)];

interface EntriesSpec {
  /** How far before lastIndex + 1 the new entries start (clamped to firstIndex). */
  readonly back: number;
  readonly count: number;
  readonly termBump: number;
  readonly sizes: readonly number[];
  readonly confChange: boolean;
}

interface SnapshotSpec {
  /** Where in [floor, lastIndex] the marker sits (0..1), plus `ahead` beyond lastIndex. */
  readonly at: number;
  readonly ahead: number;
  readonly conflict: boolean;
}

interface PartSpec {
  readonly group: number;
  readonly snapshot: SnapshotSpec | null;
  readonly entries: EntriesSpec | null;
  readonly hardState: { readonly vote: number; readonly commitAt: number } | null;
}

type Op =
  | { readonly kind: 'write'; readonly parts: readonly PartSpec[] }
  | { readonly kind: 'compact'; readonly group: number; readonly at: number }
  | { readonly kind: 'sync' }
  | { readonly kind: 'reopen' };

const groupArb = fc.integer({ min: 0, max: GROUPS.length - 1 });
/** A fraction in [0, 1], often exactly 0 or 1 (the edges matter most). */
const fracArb = fc.oneof(
  { weight: 3, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1) },
);

/** `arb` with probability weight / (weight + nullWeight), else null. */
function sometimes<T>(
  arb: fc.Arbitrary<T>,
  weight: number,
  nullWeight: number,
): fc.Arbitrary<T | null> {
  return fc.oneof({ weight, arbitrary: arb }, { weight: nullWeight, arbitrary: fc.constant(null) });
}

const partArb: fc.Arbitrary<PartSpec> = fc.record({
  group: groupArb,
  snapshot: sometimes(
    fc.record({ at: fracArb, ahead: fc.integer({ min: 0, max: 3 }), conflict: fc.boolean() }),
    1,
    6,
  ),
  entries: sometimes(
    fc.record({
      back: fc.integer({ min: 0, max: 4 }),
      count: fc.integer({ min: 1, max: 5 }),
      termBump: fc.integer({ min: 0, max: 1 }),
      sizes: fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 5, maxLength: 5 }),
      confChange: fc.boolean(),
    }),
    7,
    3,
  ),
  hardState: sometimes(
    fc.record({ vote: fc.integer({ min: 0, max: 3 }), commitAt: fracArb }),
    2,
    3,
  ),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      parts: fc.array(partArb, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 4,
    // Compacting everything (at = 1) is what lets whole segments be deleted.
    arbitrary: fc.record({
      kind: fc.constant('compact' as const),
      group: groupArb,
      at: fc.oneof(fracArb, fc.constant(1)),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'sync' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

/** A concrete operation, replayable on the model. */
type Concrete =
  | { readonly kind: 'write'; readonly writes: readonly GroupWrite[] }
  | { readonly kind: 'compact'; readonly group: RangeId; readonly index: number };

/** The reference model plus what the test needs to generate valid operations. */
class Model {
  readonly storage = new MemoryLogStorage();
  /** Per group: index of the log start (max of snapshot and compaction index). */
  private readonly floors = new Map<RangeId, number>();

  /** @param terms the term counter, shared across reopens so terms keep growing. */
  constructor(private readonly terms: { next: number }) {}

  apply(op: Concrete): void {
    if (op.kind === 'compact') {
      if (op.index > this.floor(op.group)) this.floors.set(op.group, op.index);
      this.storage.compact(op.group, op.index);
      return;
    }
    for (const w of op.writes) {
      if (w.snapshot !== undefined) this.floors.set(w.group, w.snapshot.index);
    }
    this.storage.write(op.writes);
  }

  floor(group: RangeId): number {
    return this.floors.get(group) ?? 0;
  }

  lastIndex(group: RangeId): number {
    const es = this.storage.load(group).entries;
    return es[es.length - 1]?.index ?? this.floor(group);
  }

  /**
   * Turns an abstract operation into a valid concrete one for the model's
   * current state (null if there is nothing to do). The parts of one write
   * see each other through a local view of each group's floor, last index
   * and known terms.
   */
  concretize(op: Op): Concrete | null {
    if (op.kind === 'compact') {
      const group = GROUPS[op.group]!;
      const floor = this.floor(group);
      const last = this.lastIndex(group);
      if (last <= floor) return null;
      return { kind: 'compact', group, index: floor + 1 + Math.floor(op.at * (last - floor - 1)) };
    }
    if (op.kind !== 'write') return null;
    const local = new Map<RangeId, { floor: number; last: number; terms: Map<number, number> }>();
    const view = (group: RangeId) => {
      let v = local.get(group);
      if (v === undefined) {
        const st = this.storage.load(group);
        const terms = new Map<number, number>(st.entries.map((e) => [e.index, e.term]));
        if (st.snapshot !== null) terms.set(st.snapshot.index, st.snapshot.term);
        v = { floor: this.floor(group), last: this.lastIndex(group), terms };
        local.set(group, v);
      }
      return v;
    };
    const writes: GroupWrite[] = [];
    for (const part of op.parts) {
      const group = GROUPS[part.group]!;
      const v = view(group);
      const w: {
        group: RangeId;
        snapshot?: SnapshotMeta;
        entries?: Entry[];
        hardState?: HardState;
      } = { group };
      if (part.snapshot !== null) {
        const { at, ahead, conflict } = part.snapshot;
        const index = v.floor + Math.floor(at * (v.last - v.floor)) + ahead;
        const known = v.terms.get(index);
        const t = conflict || known === undefined ? ++this.terms.next : known;
        w.snapshot = snap(index, t, [1 + (index % 3), 5]);
        const keep = known === t;
        for (const i of [...v.terms.keys()]) if (i < index || !keep) v.terms.delete(i);
        v.terms.set(index, t);
        v.floor = index;
        v.last = keep ? Math.max(v.last, index) : index;
      }
      if (part.entries !== null) {
        const e = part.entries;
        this.terms.next += e.termBump;
        const start = Math.max(v.floor + 1, v.last + 1 - e.back);
        const list: Entry[] = [];
        for (let k = 0; k < e.count; k++) {
          const index = start + k;
          const data = new Uint8Array(e.sizes[k]!).map((_, i) => (i * 31 + index) & 0xff);
          const cc: ConfChange | undefined =
            e.confChange && k === 0
              ? { kind: 'change', steps: [{ type: 'add-voter', node: nodeId(index) }] }
              : undefined;
          list.push(ent(index, this.terms.next, cc === undefined ? data : new Uint8Array(0), cc));
        }
        for (const i of [...v.terms.keys()]) if (i >= start) v.terms.delete(i);
        for (const x of list) v.terms.set(x.index, x.term);
        v.last = start + e.count - 1;
        w.entries = list;
      }
      if (part.hardState !== null) {
        w.hardState = hs(
          this.terms.next,
          part.hardState.vote,
          Math.floor(part.hardState.commitAt * v.last),
        );
      }
      writes.push(w);
    }
    return { kind: 'write', writes };
  }
}

function assertSameAs(actual: LogStorage, model: Model, when: string): void {
  assert.deepEqual(actual.groups(), model.storage.groups(), `groups() ${when}`);
  for (const g of GROUPS) {
    assert.deepEqual(actual.load(g), model.storage.load(g), `load(${g}) ${when}`);
  }
}

function runModelCheck(f: LogStorageFactory, ops: readonly Op[]): void {
  const terms = { next: 1 };
  let model = new Model(terms);
  let storage = f.open();
  const synced: Concrete[] = [];
  let pending: Concrete[] = [];
  try {
    ops.forEach((op, step) => {
      if (op.kind === 'sync' || (op.kind === 'reopen' && f.reopen === undefined)) {
        storage.sync();
        synced.push(...pending);
        pending = [];
        assertSameAs(storage, model, `after sync at step ${step}`);
        return;
      }
      if (op.kind === 'reopen') {
        storage.close();
        storage = f.reopen!();
        pending = [];
        model = new Model(terms);
        for (const c of synced) model.apply(c);
        assertSameAs(storage, model, `after reopen at step ${step}`);
        return;
      }
      const c = model.concretize(op);
      if (c === null) return;
      model.apply(c);
      if (c.kind === 'compact') storage.compact(c.group, c.index);
      else storage.write(c.writes);
      pending.push(c);
    });
    storage.sync();
    assertSameAs(storage, model, 'at the end');
  } finally {
    storage.close();
  }
}
