// The StateEngine conformance suite: every implementation runs these tests
// against itself (see state-engine.test.ts). Expected results come from
// Buffer.compare and plain Maps, never from the engines' own helpers.
// fast-check runs with a fixed seed, so a run never varies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { AssertionError, assertNever } from '../../src/core/assert.ts';
import { isTesseraError } from '../../src/core/errors.ts';
import type { RangeId } from '../../src/core/ids.ts';
import { logIndex, nodeId, rangeId, term } from '../../src/core/ids.ts';
import type { SnapshotMeta } from '../../src/raft/types.ts';
import type { SnapshotChunk, StateBatch, StateEngine } from '../../src/storage/state-engine.ts';

/** How the suite gets engines of one implementation. */
export interface StateEngineFactory {
  /** A new, empty engine with storage of its own. */
  open(): StateEngine;
  /** Closes `engine` and opens the same storage again (persistent engines only). */
  reopen?(engine: StateEngine): StateEngine;
  /** fast-check runs of the model test (default 100). */
  readonly propertyRuns?: number;
}

type Bytes = Uint8Array;
type PairList = Array<[Bytes, Bytes]>;

const R1 = rangeId(1);
const R2 = rangeId(2);
const R7 = rangeId(7);
const enc = new TextEncoder();

const b = (...bytes: number[]): Bytes => Uint8Array.from(bytes);
const s = (text: string): Bytes => enc.encode(text);
const hex = (x: Bytes): string => Buffer.from(x).toString('hex');
const hexPairs = (pairs: readonly (readonly [Bytes, Bytes])[]): string[] =>
  pairs.map(([k, v]) => `${hex(k)}=${hex(v)}`);
const byKey = (x: readonly [Bytes, Bytes], y: readonly [Bytes, Bytes]): number =>
  Buffer.compare(x[0], y[0]);

function meta(index: number, voters: number[] = [1, 2, 3]): SnapshotMeta {
  return {
    index: logIndex(index),
    term: term(Math.max(1, index >> 3)),
    conf: { voters: voters.map(nodeId), votersOutgoing: [], learners: [nodeId(9)] },
  };
}

function batch(
  range: RangeId,
  index: number,
  puts: PairList = [],
  deletes: Bytes[] = [],
): StateBatch {
  return { range, puts, deletes, applied: meta(index) };
}

const all = (e: StateEngine, r: RangeId): PairList =>
  e.scan(r, new Uint8Array(0), undefined, Infinity);

const isCorruption = (e: unknown): boolean => isTesseraError(e) && e.code === 'CORRUPTION';

/** Deterministic filler bytes of length `n`. */
function filler(n: number, seed: number): Bytes {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}

/** Keys chosen to sit at awkward places in bytewise order. */
const AWKWARD_KEYS: Bytes[] = [
  b(),
  b(0x00),
  b(0x00, 0x00),
  b(0x00, 0xff),
  b(0x01),
  b(0x7f),
  b(0x80),
  b(0xfe, 0xff),
  b(0xff),
  b(0xff, 0x00),
  b(0xff, 0xff, 0xff),
];

/** Engines a test opened, closed when it ends. */
class Harness {
  private readonly engines: StateEngine[] = [];
  constructor(private readonly factory: StateEngineFactory) {}

  open(): StateEngine {
    const e = this.factory.open();
    this.engines.push(e);
    return e;
  }

  /** The same storage reopened, or the same engine if the implementation is not persistent. */
  reopen(e: StateEngine): StateEngine {
    if (this.factory.reopen === undefined) return e;
    const next = this.factory.reopen(e);
    this.engines.push(next);
    return next;
  }

  closeAll(): void {
    for (const e of this.engines) e.close();
  }
}

function withHarness(factory: StateEngineFactory, body: (h: Harness) => void): () => void {
  return () => {
    const h = new Harness(factory);
    try {
      body(h);
    } finally {
      h.closeAll();
    }
  };
}

/** Range `r` filled with `n` pairs of `valueBytes`-byte values, applied at `index`. */
function fill(e: StateEngine, r: RangeId, n: number, valueBytes: number, index = 10): PairList {
  const pairs: PairList = [];
  for (let i = 0; i < n; i++) {
    pairs.push([Uint8Array.of(i >> 8, i & 0xff, 0x00, 0xff), filler(valueBytes, i)]);
  }
  e.commit(batch(r, index, pairs));
  return pairs.sort(byKey);
}

/** A copy of a chunk with some fields replaced. */
function withChunk(c: SnapshotChunk, patch: Partial<SnapshotChunk>): SnapshotChunk {
  return { ...c, ...patch };
}

/** Registers the conformance tests for one implementation. */
export function runStateEngineSuite(name: string, factory: StateEngineFactory): void {
  const test = (title: string, body: (h: Harness) => void): void => {
    it(title, withHarness(factory, body));
  };

  describe(`StateEngine conformance: ${name}`, () => {
    describe('commit, get, delete', () => {
      registerBasicTests(test);
    });
    describe('scan', () => {
      registerScanTests(test);
    });
    describe('ranges and applied position', () => {
      registerRangeTests(test);
    });
    describe('snapshots', () => {
      registerSnapshotTests(test);
      registerTamperTests(test);
    });
    describe('against a reference model', () => {
      registerModelTest(factory);
    });
  });
}

type TestFn = (title: string, body: (h: Harness) => void) => void;

function registerBasicTests(test: TestFn): void {
  test('commit then get: values and the applied position are visible', (h) => {
    const e = h.open();
    assert.equal(e.get(R1, s('a')), undefined);
    assert.equal(e.applied(R1), null);
    e.commit(
      batch(R1, 5, [
        [s('a'), s('1')],
        [s('b'), b()],
      ]),
    );
    assert.equal(hex(e.get(R1, s('a'))!), hex(s('1')));
    assert.equal(hex(e.get(R1, s('b'))!), '', 'empty values are values');
    assert.equal(e.get(R1, s('c')), undefined);
    assert.deepEqual(e.applied(R1), meta(5));
    e.commit(batch(R1, 6, [[s('a'), s('2')]]));
    assert.equal(hex(e.get(R1, s('a'))!), hex(s('2')), 'a later put overwrites');
    e.commit(batch(R1, 7));
    assert.deepEqual(e.applied(R1), meta(7), 'an empty batch still moves the applied position');
  });

  test('deletes remove keys; within a batch deletes apply before puts', (h) => {
    const e = h.open();
    e.commit(
      batch(R1, 1, [
        [s('a'), s('1')],
        [s('b'), s('2')],
        [s('c'), s('3')],
      ]),
    );
    e.commit(batch(R1, 2, [], [s('a'), s('missing')]));
    assert.equal(e.get(R1, s('a')), undefined);
    assert.equal(hex(e.get(R1, s('b'))!), hex(s('2')));
    e.commit(batch(R1, 3, [[s('b'), s('new')]], [s('b')]));
    assert.equal(hex(e.get(R1, s('b'))!), hex(s('new')), 'put wins over delete in one batch');
    e.commit(
      batch(R1, 4, [
        [s('c'), s('x')],
        [s('c'), s('y')],
      ]),
    );
    assert.equal(hex(e.get(R1, s('c'))!), hex(s('y')), 'the later of two puts wins');
    assert.deepEqual(
      hexPairs(all(e, R1)),
      hexPairs([
        [s('b'), s('new')],
        [s('c'), s('y')],
      ]),
    );
  });

  test('bytes are copied in and out: callers never share buffers with the engine', (h) => {
    const e = h.open();
    const key = s('k');
    const value = s('value');
    e.commit(batch(R1, 1, [[key, value]]));
    key[0] = 0x00;
    value[0] = 0x00;
    const got = e.get(R1, s('k'))!;
    assert.equal(hex(got), hex(s('value')));
    got[0] = 0x00;
    const [[k2, v2]] = e.scan(R1, b(), undefined, 1) as [[Bytes, Bytes]];
    k2[0] = 0x00;
    v2[0] = 0x00;
    e.commit(batch(R1, 2, [[s('other'), filler(300, 1)]]));
    assert.equal(hex(e.get(R1, s('k'))!), hex(s('value')));
    assert.deepEqual(hexPairs(e.scan(R1, b(), undefined, 1)), hexPairs([[s('k'), s('value')]]));
  });

  test('a failed commit changes nothing (data and applied position stay together)', (h) => {
    const e = h.open();
    e.commit(batch(R1, 5, [[s('a'), s('1')]]));
    assert.throws(
      () =>
        e.commit(
          batch(
            R1,
            4,
            [
              [s('a'), s('2')],
              [s('b'), s('3')],
            ],
            [s('a')],
          ),
        ),
      AssertionError,
      'the applied index never moves backwards',
    );
    assert.deepEqual(hexPairs(all(e, R1)), hexPairs([[s('a'), s('1')]]));
    assert.deepEqual(e.applied(R1), meta(5));
  });
}

function registerScanTests(test: TestFn): void {
  test('keys come back in bytewise order, including 0x00 and 0xff bytes', (h) => {
    const e = h.open();
    const pairs: PairList = AWKWARD_KEYS.map((k, i) => [k, Uint8Array.of(i)]);
    // Several commits, in an order unrelated to key order.
    const shuffled = [...pairs].reverse();
    e.commit(
      batch(
        R1,
        1,
        shuffled.filter((_, i) => i % 2 === 0),
      ),
    );
    e.commit(
      batch(
        R1,
        2,
        shuffled.filter((_, i) => i % 2 === 1),
      ),
    );
    const expected = [...pairs].sort(byKey);
    assert.deepEqual(hexPairs(all(e, R1)), hexPairs(expected));
    for (const [k, v] of pairs) assert.equal(hex(e.get(R1, k)!), hex(v));
  });

  test('start is inclusive, end exclusive, limit caps the count', (h) => {
    const e = h.open();
    const pairs: PairList = AWKWARD_KEYS.map((k, i) => [k, Uint8Array.of(i)]);
    e.commit(batch(R1, 1, pairs));
    const sorted = [...pairs].sort(byKey);
    const expect = (start: Bytes, end: Bytes | undefined, limit: number): string[] =>
      hexPairs(
        sorted
          .filter(
            ([k]) =>
              Buffer.compare(k, start) >= 0 && (end === undefined || Buffer.compare(k, end) < 0),
          )
          .slice(0, limit),
      );
    const bounds: Array<Bytes | undefined> = [
      ...AWKWARD_KEYS,
      b(0x00, 0x00, 0x00),
      b(0x50),
      undefined,
    ];
    for (const start of bounds) {
      if (start === undefined) continue;
      for (const end of bounds) {
        for (const limit of [0, 1, 2, 5, Infinity]) {
          assert.deepEqual(
            hexPairs(e.scan(R1, start, end, limit)),
            expect(start, end, limit),
            `scan [${hex(start)}, ${end === undefined ? 'end' : hex(end)}) limit ${limit}`,
          );
        }
      }
    }
    for (const start of bounds) {
      if (start === undefined) continue;
      for (const end of bounds) {
        for (const limit of [0, 1, 2, 5, Infinity]) {
          const all = expect(start, end, Infinity);
          assert.deepEqual(
            hexPairs(e.scanReverse(R1, start, end, limit)),
            all.reverse().slice(0, limit),
            `scanReverse [${hex(start)}, ${end === undefined ? 'end' : hex(end)}) limit ${limit}`,
          );
        }
      }
    }
    assert.deepEqual(e.scanReverse(R2, b(), undefined, 10), [], 'reverse, unknown range: nothing');
    assert.deepEqual(e.scan(R1, b(0xff), b(0x00), 10), [], 'start after end: nothing');
    assert.deepEqual(e.scan(R2, b(), undefined, 10), [], 'unknown range: nothing');
  });
}

function registerRangeTests(test: TestFn): void {
  test('ranges are isolated: same user keys, own values, own applied positions', (h) => {
    const e = h.open();
    const big = rangeId(2 ** 40 + 1);
    const max = rangeId(Number.MAX_SAFE_INTEGER);
    const ranges = [rangeId(0), R1, R2, big, max];
    ranges.forEach((r, i) => {
      e.commit(
        batch(r, 10 + i, [
          [b(0xff, 0xff), Uint8Array.of(i)],
          [b(), Uint8Array.of(i, i)],
          [b(0x00), b(i)],
        ]),
      );
    });
    ranges.forEach((r, i) => {
      const expected: PairList = [
        [b(), Uint8Array.of(i, i)],
        [b(0x00), b(i)],
        [b(0xff, 0xff), Uint8Array.of(i)],
      ];
      assert.deepEqual(hexPairs(all(e, r)), hexPairs(expected), `range ${r}`);
      assert.deepEqual(e.applied(r), meta(10 + i));
    });
    e.dropRange(R1);
    assert.deepEqual(all(e, R1), []);
    assert.equal(e.applied(R1), null);
    assert.equal(all(e, R2).length, 3, 'dropping range 1 leaves range 2 alone');
    assert.equal(all(e, rangeId(0)).length, 3);
  });

  test('the applied position is stored atomically with its data and survives a reopen', (h) => {
    let e = h.open();
    e.commit(
      batch(R1, 3, [
        [s('a'), s('1')],
        [s('b'), s('2')],
      ]),
    );
    e.commit(batch(R1, 4, [[s('c'), s('3')]], [s('a')]));
    e.commit(batch(R2, 9, [[s('a'), s('other')]]));
    e = h.reopen(e);
    assert.deepEqual(
      hexPairs(all(e, R1)),
      hexPairs([
        [s('b'), s('2')],
        [s('c'), s('3')],
      ]),
    );
    assert.deepEqual(e.applied(R1), meta(4));
    assert.deepEqual(e.applied(R2), meta(9));
    e.commit(batch(R1, 5, [[s('d'), s('4')]]));
    e = h.reopen(e);
    assert.equal(hex(e.get(R1, s('d'))!), hex(s('4')));
    assert.deepEqual(e.applied(R1), meta(5));
  });

  test('dropRange removes every key and the applied position', (h) => {
    let e = h.open();
    fill(e, R1, 2500, 10); // more keys than one deletion pass of a cursor-based engine
    e.commit(batch(R2, 1, [[s('keep'), s('me')]]));
    e.dropRange(R1);
    e.dropRange(R7); // never used: a no-op
    assert.deepEqual(all(e, R1), []);
    assert.equal(e.applied(R1), null);
    e = h.reopen(e);
    assert.deepEqual(all(e, R1), []);
    assert.equal(e.applied(R1), null);
    assert.deepEqual(hexPairs(all(e, R2)), hexPairs([[s('keep'), s('me')]]));
    e.commit(batch(R1, 1, [[s('x'), s('y')]]));
    assert.deepEqual(e.applied(R1), meta(1), 'a dropped range starts over');
  });
}

/** Exports range `r` of `e` into an array of chunks. */
const exported = (e: StateEngine, r: RangeId, chunkBytesMax: number): SnapshotChunk[] => [
  ...e.exportSnapshot(r, chunkBytesMax),
];

function registerSnapshotTests(test: TestFn): void {
  test('export then import reproduces data and applied position (other engine, other range)', (h) => {
    const src = h.open();
    const pairs = fill(src, R1, 200, 40, 17);
    src.commit(
      batch(
        R1,
        18,
        AWKWARD_KEYS.map((k): [Bytes, Bytes] => [k, filler(7, k.length)]),
      ),
    );
    const expected = hexPairs(all(src, R1));
    const chunks = exported(src, R1, 512);
    assert.ok(chunks.length > 5, `several chunks (${chunks.length})`);
    assert.ok(pairs.length > 0);

    const dst = h.open();
    dst.commit(batch(R1, 99, [[s('stale'), s('gone after import')]]));
    dst.importSnapshot(R1, chunks);
    assert.deepEqual(hexPairs(all(dst, R1)), expected);
    assert.deepEqual(dst.applied(R1), meta(18));

    // Into another range of the same engine, straight from the export stream.
    src.importSnapshot(R7, src.exportSnapshot(R1, 300));
    assert.deepEqual(hexPairs(all(src, R7)), expected);
    assert.deepEqual(src.applied(R7), meta(18));
    assert.deepEqual(hexPairs(all(src, R1)), expected, 'the source is unchanged');

    const again = h.reopen(dst);
    assert.deepEqual(hexPairs(all(again, R1)), expected, 'an import is durable');
    assert.deepEqual(again.applied(R1), meta(18));
  });

  test('an empty range exports one final chunk and imports as empty', (h) => {
    const e = h.open();
    e.commit(batch(R1, 3));
    const chunks = exported(e, R1, 1024);
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0]!.seq, 0);
    assert.deepEqual(chunks[0]!.pairs, []);
    assert.deepEqual(chunks[0]!.last, { applied: meta(3), crc32c: 0, pairCount: 0 });
    fill(e, R2, 10, 10, 50);
    e.importSnapshot(R2, chunks);
    assert.deepEqual(all(e, R2), []);
    assert.deepEqual(e.applied(R2), meta(3));
  });

  test('a large export is split into chunks within the byte bound, in order', (h) => {
    const e = h.open();
    const chunkBytesMax = 4096;
    const pairs = fill(e, R1, 600, 100);
    const chunks = exported(e, R1, chunkBytesMax);
    const payload = pairs.reduce((n, [k, v]) => n + k.length + v.length, 0);
    assert.ok(chunks.length >= Math.ceil(payload / chunkBytesMax), `${chunks.length} chunks`);
    chunks.forEach((c, i) => {
      assert.equal(c.seq, i);
      assert.equal(c.range, R1);
      assert.equal(c.last !== undefined, i === chunks.length - 1, 'only the last chunk is last');
      const bytes = c.pairs.reduce((n, [k, v]) => n + k.length + v.length, 0);
      assert.ok(bytes <= chunkBytesMax, `chunk ${i}: ${bytes} bytes`);
    });
    assert.deepEqual(hexPairs(chunks.flatMap((c) => [...c.pairs])), hexPairs(pairs));
    assert.equal(chunks.at(-1)!.last!.pairCount, 600);
  });

  test('a pair larger than the bound travels alone', (h) => {
    const e = h.open();
    e.commit(
      batch(R1, 1, [
        [s('a'), filler(10, 1)],
        [s('b'), filler(5000, 2)],
        [s('c'), filler(10, 3)],
      ]),
    );
    const chunks = exported(e, R1, 1000);
    const sizes = chunks.map((c) => c.pairs.length);
    assert.deepEqual(sizes, [1, 1, 1]);
    assert.equal(chunks[1]!.pairs[0]![1].length, 5000);
    const dst = h.open();
    dst.importSnapshot(R1, chunks);
    assert.deepEqual(hexPairs(all(dst, R1)), hexPairs(all(e, R1)));
  });

  test('an export is a consistent view while commits continue', (h) => {
    const e = h.open();
    fill(e, R1, 100, 50, 10);
    const before = hexPairs(all(e, R1));
    const it = e.exportSnapshot(R1, 512)[Symbol.iterator]();
    const first = it.next();
    assert.equal(first.done, false);
    const chunks: SnapshotChunk[] = [first.value as SnapshotChunk];
    const [lastKey] = all(e, R1).at(-1)!;
    e.commit(batch(R1, 11, [[b(0xff, 0xff, 0xff, 0xff), s('late')]], [lastKey]));
    for (let r = it.next(); r.done !== true; r = it.next()) chunks.push(r.value);
    e.importSnapshot(R7, chunks);
    assert.deepEqual(hexPairs(all(e, R7)), before);
    assert.deepEqual(e.applied(R7), meta(10));
    assert.notDeepEqual(hexPairs(all(e, R1)), before, 'the commit did happen');
  });
}

/** One way to damage a valid stream (at least 3 chunks, the middle ones holding pairs). */
interface Tamper {
  readonly name: string;
  damage(chunks: SnapshotChunk[]): SnapshotChunk[];
}

function flipValueByte(c: SnapshotChunk): SnapshotChunk {
  const pairs = c.pairs.map(([k, v], i): [Bytes, Bytes] => {
    if (i !== 0) return [k, v];
    const flipped = new Uint8Array(v);
    flipped[0] = flipped[0]! ^ 0x01;
    return [k, flipped];
  });
  return withChunk(c, { pairs });
}

const lastOf = (chunks: SnapshotChunk[]): NonNullable<SnapshotChunk['last']> =>
  chunks.at(-1)!.last!;

const TAMPERS: Tamper[] = [
  {
    name: 'a flipped byte in a value',
    damage: (cs) => cs.map((c, i) => (i === 1 ? flipValueByte(c) : c)),
  },
  { name: 'a dropped middle chunk', damage: (cs) => cs.filter((_, i) => i !== 1) },
  { name: 'a dropped last chunk', damage: (cs) => cs.slice(0, -1) },
  { name: 'a dropped first chunk', damage: (cs) => cs.slice(1) },
  {
    name: 'reordered chunks',
    damage: (cs) => [cs[1]!, cs[0]!, ...cs.slice(2)],
  },
  {
    name: 'reordered chunks with renumbered seq',
    damage: (cs) => [withChunk(cs[1]!, { seq: 0 }), withChunk(cs[0]!, { seq: 1 }), ...cs.slice(2)],
  },
  { name: 'a duplicated chunk', damage: (cs) => [cs[0]!, ...cs] },
  {
    name: 'a chunk after the last',
    damage: (cs) => [...cs, withChunk(cs[1]!, { seq: cs.length, last: undefined })],
  },
  {
    name: 'a wrong pair count',
    damage: (cs) => [
      ...cs.slice(0, -1),
      withChunk(cs.at(-1)!, { last: { ...lastOf(cs), pairCount: lastOf(cs).pairCount + 1 } }),
    ],
  },
  {
    name: 'a wrong checksum',
    damage: (cs) => [
      ...cs.slice(0, -1),
      withChunk(cs.at(-1)!, { last: { ...lastOf(cs), crc32c: (lastOf(cs).crc32c ^ 1) >>> 0 } }),
    ],
  },
  {
    name: 'a pair moved between chunks (checksum of a reordered stream)',
    damage: (cs) => [
      withChunk(cs[0]!, { pairs: [...cs[0]!.pairs, ...cs[1]!.pairs.slice(1)] }),
      withChunk(cs[1]!, { pairs: cs[1]!.pairs.slice(0, 1) }),
      ...cs.slice(2),
    ],
  },
  {
    name: 'chunks from two source ranges',
    damage: (cs) => cs.map((c, i) => (i === 1 ? withChunk(c, { range: rangeId(c.range + 1) }) : c)),
  },
  { name: 'an empty stream', damage: () => [] },
];

function registerTamperTests(test: TestFn): void {
  test('a damaged stream throws CORRUPTION and leaves the previous data intact', (h) => {
    const src = h.open();
    fill(src, R1, 60, 30, 40);
    const chunks = exported(src, R1, 256);
    assert.ok(chunks.length >= 4 && chunks[1]!.pairs.length >= 2, 'enough chunks to damage');
    const dst = h.open();
    const previous = fill(dst, R1, 5, 5, 7);
    for (const t of TAMPERS) {
      assert.throws(() => dst.importSnapshot(R1, t.damage(chunks)), isCorruption, t.name);
      assert.deepEqual(hexPairs(all(dst, R1)), hexPairs(previous), `${t.name}: data intact`);
      assert.deepEqual(dst.applied(R1), meta(7), `${t.name}: applied position intact`);
    }
    dst.importSnapshot(R1, chunks); // the undamaged stream still imports
    assert.deepEqual(hexPairs(all(dst, R1)), hexPairs(all(src, R1)));
  });

  test('a stream that fails midway (not a checksum error) also leaves the data intact', (h) => {
    const src = h.open();
    fill(src, R1, 60, 30, 40);
    const chunks = exported(src, R1, 256);
    const dst = h.open();
    const previous = fill(dst, R1, 5, 5, 7);
    function* broken(): Generator<SnapshotChunk> {
      yield chunks[0]!;
      yield chunks[1]!;
      throw new Error('connection reset');
    }
    assert.throws(() => dst.importSnapshot(R1, broken()), /connection reset/);
    assert.deepEqual(hexPairs(all(dst, R1)), hexPairs(previous));
    assert.deepEqual(dst.applied(R1), meta(7));
  });
}

/** One step of the model test. */
type Op =
  | { readonly kind: 'put'; readonly range: RangeId; readonly key: Bytes; readonly value: Bytes }
  | { readonly kind: 'del'; readonly range: RangeId; readonly key: Bytes }
  | { readonly kind: 'commit'; readonly range: RangeId }
  | {
      readonly kind: 'scan';
      readonly range: RangeId;
      readonly start: Bytes;
      readonly end: Bytes | undefined;
      readonly limit: number;
    }
  | { readonly kind: 'roundtrip'; readonly range: RangeId; readonly chunkBytesMax: number }
  | { readonly kind: 'drop'; readonly range: RangeId }
  | { readonly kind: 'reopen' };

const keyArb = fc
  .array(fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff), { maxLength: 3 })
  .map((xs) => Uint8Array.from(xs));
const rangeArb = fc.constantFrom(R1, R2);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('put' as const),
      range: rangeArb,
      key: keyArb,
      value: fc.uint8Array({ maxLength: 12 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('del' as const), range: rangeArb, key: keyArb }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('commit' as const), range: rangeArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('scan' as const),
      range: rangeArb,
      start: keyArb,
      end: fc.option(keyArb, { nil: undefined }),
      limit: fc.constantFrom(0, 1, 3, Infinity),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('roundtrip' as const),
      range: rangeArb,
      chunkBytesMax: fc.integer({ min: 1, max: 40 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), range: rangeArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

/** The reference: committed pairs per range (by hex key), plus the batch being built. */
class Model {
  readonly committed = new Map<RangeId, Map<string, [Bytes, Bytes]>>();
  readonly applied = new Map<RangeId, number>();
  pending = new Map<RangeId, { puts: PairList; deletes: Bytes[] }>();

  stage(range: RangeId): { puts: PairList; deletes: Bytes[] } {
    let p = this.pending.get(range);
    if (p === undefined) this.pending.set(range, (p = { puts: [], deletes: [] }));
    return p;
  }

  /** Applies the staged batch of `range` to the model; returns it as a StateBatch. */
  commit(range: RangeId): StateBatch {
    const p = this.stage(range);
    this.pending.delete(range);
    const data = this.committed.get(range) ?? new Map<string, [Bytes, Bytes]>();
    this.committed.set(range, data);
    for (const k of p.deletes) data.delete(hex(k));
    for (const [k, v] of p.puts) data.set(hex(k), [k, v]);
    const index = (this.applied.get(range) ?? 0) + 1;
    this.applied.set(range, index);
    return { range, puts: p.puts, deletes: p.deletes, applied: meta(index) };
  }

  scan(range: RangeId, start: Bytes, end: Bytes | undefined, limit: number): PairList {
    return [...(this.committed.get(range)?.values() ?? [])]
      .filter(
        ([k]) => Buffer.compare(k, start) >= 0 && (end === undefined || Buffer.compare(k, end) < 0),
      )
      .sort(byKey)
      .slice(0, limit);
  }

  drop(range: RangeId): void {
    this.committed.delete(range);
    this.applied.delete(range);
  }
}

/** Runs one op on engine and model; returns the engine to use next. */
function step(h: Harness, e: StateEngine, m: Model, op: Op): StateEngine {
  switch (op.kind) {
    case 'put':
      m.stage(op.range).puts.push([op.key, op.value]);
      return e;
    case 'del':
      m.stage(op.range).deletes.push(op.key);
      return e;
    case 'commit':
      e.commit(m.commit(op.range));
      return e;
    case 'scan':
      assert.deepEqual(
        hexPairs(e.scan(op.range, op.start, op.end, op.limit)),
        hexPairs(m.scan(op.range, op.start, op.end, op.limit)),
      );
      return e;
    case 'roundtrip':
      if (e.applied(op.range) !== null)
        e.importSnapshot(op.range, exported(e, op.range, op.chunkBytesMax));
      return e;
    case 'drop':
      e.dropRange(op.range);
      m.drop(op.range);
      return e;
    case 'reopen':
      return h.reopen(e);
    default:
      return assertNever(op, 'op');
  }
}

/** Runs `ops` on a fresh engine and the model, then compares everything. */
function runOps(h: Harness, ops: readonly Op[]): void {
  let e = h.open();
  const m = new Model();
  for (const op of ops) e = step(h, e, m, op);
  for (const r of [R1, R2]) {
    assert.deepEqual(hexPairs(all(e, r)), hexPairs(m.scan(r, b(), undefined, Infinity)));
    const index = m.applied.get(r);
    assert.deepEqual(e.applied(r), index === undefined ? null : meta(index));
  }
}

function registerModelTest(factory: StateEngineFactory): void {
  it('random puts, deletes, commits, scans, snapshots, drops and reopens match a reference model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        withHarness(factory, (h) => runOps(h, ops))();
      }),
      { numRuns: factory.propertyRuns ?? 100, seed: 20240607 },
    );
  });
}
