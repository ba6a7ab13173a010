// The primary-key codec: byte order equals tuple order (against a reference
// comparator written here), round trips, bounds around keys, limits and
// malformed input. Canaries: wrong encoders the order property must reject.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { TesseraError } from '../../src/core/errors.ts';
import { INT64_MAX, INT64_MIN } from '../../src/table/int64.ts';
import {
  PK_BYTES_MAX,
  PK_COLUMN_BYTES_MAX,
  compareBytes,
  decodePrimaryKey,
  decodePrimaryKeyPrefix,
  encodeBound,
  encodePrimaryKey,
  encodeScanRange,
  type ScanDirection,
} from '../../src/table/key-codec.ts';
import {
  INF_MAX,
  INF_MIN,
  type PkBound,
  type PkColumnType,
  type PkValue,
} from '../../src/table/types.ts';
import { concat } from '../support/bytes.ts';
import { throwsCode } from '../support/errors.ts';

// ---- reference model: tuple order, written without the codec ----

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function compareSeq(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return sign(a.length - b.length);
}

/** Strings compare by Unicode code points (which UTF-8 byte order equals). */
function codePoints(s: string): number[] {
  return [...s].map((c) => c.codePointAt(0)!);
}

function compareValue(a: PkValue, b: PkValue): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') {
    return compareSeq(codePoints(a), codePoints(b));
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) return compareSeq([...a], [...b]);
  throw new Error('values of different types');
}

function compareTuple(a: readonly PkValue[], b: readonly PkValue[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareValue(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return sign(a.length - b.length);
}

/** -1, 0 or 1 as a full row is below, equal to or above a bound. */
function rowVsBound(row: readonly PkValue[], bound: readonly PkBound[]): number {
  for (let i = 0; i < bound.length; i++) {
    const b = bound[i]!;
    if (b === INF_MIN) return 1;
    if (b === INF_MAX) return -1;
    const c = compareValue(row[i]!, b);
    if (c !== 0) return c;
  }
  return bound.length === row.length ? 0 : 1;
}

// ---- generators ----

const COLUMN_TYPES: readonly PkColumnType[] = ['integer', 'string', 'binary'];

const integerArb = fc.oneof(
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
  fc.constantFrom(INT64_MIN, INT64_MIN + 1n, INT64_MAX, INT64_MAX - 1n, 0n, -1n, 1n, 255n, 256n),
  fc.bigInt({ min: -3n, max: 3n }),
);

// Small alphabets make shared prefixes, zero bytes and ties common.
const stringArb = fc.oneof(
  fc.constantFrom('', '\u0000', '\u0000\u0000', 'a', 'a\u0000', 'a\u0000b', 'ab', '\u00ff', 'é'),
  fc.string({
    unit: fc.constantFrom('a', 'b', '\u0000', '\u0001', '\u007f', '\u00e9', '\uffff', '😀'),
    maxLength: 6,
  }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

const binaryArb = fc.oneof(
  fc
    .array(fc.constantFrom(0x00, 0x01, 0x7f, 0xfe, 0xff), { maxLength: 6 })
    .map((b) => Uint8Array.from(b)),
  fc.uint8Array({ maxLength: 20 }),
);

function valueArb(type: PkColumnType): fc.Arbitrary<PkValue> {
  return type === 'integer' ? integerArb : type === 'string' ? stringArb : binaryArb;
}

const schemaArb = fc.array(fc.constantFrom(...COLUMN_TYPES), { minLength: 1, maxLength: 4 });

function tupleArb(columns: readonly PkColumnType[]): fc.Arbitrary<PkValue[]> {
  return fc.tuple(...columns.map(valueArb));
}

/** A bound: 1..n columns, each finite or infinite. */
function boundArb(columns: readonly PkColumnType[]): fc.Arbitrary<PkBound[]> {
  return fc
    .integer({ min: 1, max: columns.length })
    .chain((n) =>
      fc.tuple(
        ...columns
          .slice(0, n)
          .map((t) =>
            fc.oneof(
              { weight: 4, arbitrary: valueArb(t) as fc.Arbitrary<PkBound> },
              { weight: 1, arbitrary: fc.constantFrom<PkBound>(INF_MIN, INF_MAX) },
            ),
          ),
      ),
    );
}

type Encoder = (columns: readonly PkColumnType[], values: readonly PkValue[]) => Uint8Array;

/** For every schema and set of keys, sorting by bytes equals sorting by tuples. */
function orderProperty(encode: Encoder) {
  return fc.property(
    schemaArb.chain((columns) =>
      fc.tuple(fc.constant(columns), fc.array(tupleArb(columns), { minLength: 2, maxLength: 12 })),
    ),
    ([columns, tuples]) => {
      const encoded = tuples.map((t) => encode(columns, t));
      for (let i = 0; i < tuples.length; i++) {
        for (let j = 0; j < tuples.length; j++) {
          if (
            sign(compareBytes(encoded[i]!, encoded[j]!)) !== compareTuple(tuples[i]!, tuples[j]!)
          ) {
            return false;
          }
        }
      }
      return true;
    },
  );
}

/** Canary: integers as plain two's complement (no sign flip): negatives sort after positives. */
const noSignFlip: Encoder = (columns, values) =>
  concat(
    columns.map((t, i) => {
      const v = values[i]!;
      if (t !== 'integer') return encodePrimaryKey([t], [v]);
      const body = new Uint8Array(9);
      body[0] = 0x10;
      new DataView(body.buffer).setBigUint64(1, BigInt.asUintN(64, v as bigint));
      return body;
    }),
  );

/** Canary: variable-length columns ended by one 0x00 and not escaped. */
const noEscape: Encoder = (columns, values) =>
  concat(
    columns.map((t, i) => {
      const v = values[i]!;
      if (t === 'integer') return encodePrimaryKey([t], [v]);
      const data = typeof v === 'string' ? new TextEncoder().encode(v) : (v as Uint8Array);
      return concat([Uint8Array.of(t === 'string' ? 0x20 : 0x30), data, Uint8Array.of(0)]);
    }),
  );

type BoundEncoder = (
  columns: readonly PkColumnType[],
  bound: readonly PkBound[],
  edge: 'lower' | 'upper',
) => Uint8Array;

/**
 * Bounds made from a row's prefix, optionally followed by an infinity, sit
 * exactly where the reference puts them, for stored keys with a suffix.
 */
function boundFromRowProperty(encode: BoundEncoder) {
  return fc.property(
    schemaArb.chain((c) =>
      fc.tuple(
        fc.constant(c),
        fc.array(tupleArb(c), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.constantFrom<PkBound | undefined>(INF_MIN, INF_MAX, undefined),
        fc.uint8Array({ minLength: 1, maxLength: 3 }),
      ),
    ),
    ([columns, rows, pick, inf, suffix]) => {
      const base = rows[pick % rows.length]!;
      const cut = 1 + (pick % columns.length);
      const bound: PkBound[] = base.slice(0, cut);
      if (inf !== undefined && cut < columns.length) bound.push(inf);
      const lower = encode(columns, bound, 'lower');
      const upper = encode(columns, bound, 'upper');
      for (const row of rows) {
        const key = concat([encodePrimaryKey(columns, row), suffix]);
        const cmp = rowVsBound(row, bound);
        if (compareBytes(key, lower) < 0 !== cmp < 0) return false;
        if (compareBytes(key, upper) < 0 !== cmp <= 0) return false;
      }
      return true;
    },
  );
}

/** Canary: the upper edge of a key as the key's byte successor (right only without a suffix). */
const upperEdgeWithoutSuffix: BoundEncoder = (columns, bound, edge) => {
  const lower = encodeBound(columns, bound, 'lower');
  const isKey =
    bound.length === columns.length && !bound.some((b) => b === INF_MIN || b === INF_MAX);
  return edge === 'upper' && isKey ? concat([lower, Uint8Array.of(0)]) : lower;
};

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

// ---- tests ----

describe('primary key codec', () => {
  it('encodes the documented example', () => {
    const bytes = encodePrimaryKey(['string', 'integer'], ['a\u0000b', -1n]);
    assert.equal(hex(bytes), '206100ff62000110' + '7fffffffffffffff');
    assert.equal(hex(encodePrimaryKey(['integer'], [INT64_MIN])), '100000000000000000');
    assert.equal(hex(encodePrimaryKey(['integer'], [0n])), '108000000000000000');
    assert.equal(hex(encodePrimaryKey(['integer'], [INT64_MAX])), '10ffffffffffffffff');
    assert.equal(hex(encodePrimaryKey(['binary'], [new Uint8Array()])), '300001');
  });

  it('orders bytes as tuples for arbitrary schemas and keys', () => {
    fc.assert(orderProperty(encodePrimaryKey), { numRuns: 300 });
  });

  it('canary: the order property rejects integers without the sign flip', () => {
    const result = fc.check(orderProperty(noSignFlip), { numRuns: 300 });
    assert.equal(result.failed, true, 'the property must catch a missing sign flip');
  });

  it('canary: the order property rejects unescaped variable-length columns', () => {
    const result = fc.check(orderProperty(noEscape), { numRuns: 300 });
    assert.equal(result.failed, true, 'the property must catch missing escaping');
  });

  it('round-trips every key, with and without a suffix', () => {
    fc.assert(
      fc.property(
        schemaArb.chain((c) => fc.tuple(fc.constant(c), tupleArb(c), fc.uint8Array())),
        ([columns, values, suffix]) => {
          const bytes = encodePrimaryKey(columns, values);
          assert.deepEqual(decodePrimaryKey(columns, bytes), values);
          const prefixed = decodePrimaryKeyPrefix(columns, concat([bytes, suffix]));
          assert.deepEqual(prefixed.values, values);
          assert.equal(prefixed.end, bytes.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('orders the edge cases', () => {
    const ints = [INT64_MIN, INT64_MIN + 1n, -256n, -1n, 0n, 1n, 255n, 256n, INT64_MAX];
    const strings = ['', '\u0000', '\u0000\u0000', '\u0001', 'a', 'a\u0000', 'a\u0000b', 'ab'];
    const moreStrings = ['b', '\u007f', '\u00e9', '\u0800', '\uffff', '😀'];
    const binaries = [[], [0], [0, 0], [0, 0xff], [1], [0xff], [0xff, 0], [0xff, 0xff]];
    const cases: [PkColumnType, PkValue[]][] = [
      ['integer', ints],
      ['string', [...strings, ...moreStrings]],
      ['binary', binaries.map((b) => Uint8Array.from(b))],
    ];
    for (const [type, sorted] of cases) {
      const encoded = sorted.map((v) => encodePrimaryKey([type], [v]));
      for (let i = 1; i < encoded.length; i++) {
        assert.ok(compareBytes(encoded[i - 1]!, encoded[i]!) < 0, `${type} ${i - 1} < ${i}`);
        assert.deepEqual(decodePrimaryKey([type], encoded[i]!), [sorted[i]]);
      }
    }
    // A shorter string column with a larger next column still sorts first.
    const short = encodePrimaryKey(['string', 'integer'], ['a', INT64_MAX]);
    const long = encodePrimaryKey(['string', 'integer'], ['a\u0000', INT64_MIN]);
    assert.ok(compareBytes(short, long) < 0);
  });

  it('places bound edges exactly around keys, with any storage suffix', () => {
    fc.assert(
      fc.property(
        schemaArb.chain((c) =>
          fc.tuple(
            fc.constant(c),
            fc.array(tupleArb(c), { minLength: 1, maxLength: 8 }),
            boundArb(c),
            fc.uint8Array({ maxLength: 4 }),
          ),
        ),
        ([columns, rows, bound, suffix]) => {
          // Include rows equal to the bound's finite prefix, the interesting case.
          const lower = encodeBound(columns, bound, 'lower');
          const upper = encodeBound(columns, bound, 'upper');
          for (const row of rows) {
            const key = concat([encodePrimaryKey(columns, row), suffix]);
            const cmp = rowVsBound(row, bound);
            assert.equal(compareBytes(key, lower) < 0, cmp < 0, 'lower edge');
            assert.equal(compareBytes(key, upper) < 0, cmp <= 0, 'upper edge');
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('places bounds built from a row (equal, partial, infinite), with suffixes', () => {
    fc.assert(boundFromRowProperty(encodeBound), { numRuns: 500 });
  });

  it('canary: the bound property rejects an upper edge that ignores storage suffixes', () => {
    const result = fc.check(boundFromRowProperty(upperEdgeWithoutSuffix), { numRuns: 500 });
    assert.equal(result.failed, true, 'the property must catch key+0x00 as the upper edge');
  });

  it('selects exactly the rows of a GetRange in both directions', () => {
    fc.assert(
      fc.property(
        schemaArb.chain((c) =>
          fc.tuple(
            fc.constant(c),
            fc.array(tupleArb(c), { minLength: 1, maxLength: 10 }),
            boundArb(c),
            boundArb(c),
            fc.constantFrom<ScanDirection>('forward', 'backward'),
            fc.uint8Array({ maxLength: 3 }),
          ),
        ),
        ([columns, rows, start, end, direction, suffix]) => {
          const range = encodeScanRange(columns, start, end, direction);
          for (const row of rows) {
            const key = concat([encodePrimaryKey(columns, row), suffix]);
            const inBytes = compareBytes(range.start, key) <= 0 && compareBytes(key, range.end) < 0;
            const expected =
              direction === 'forward'
                ? rowVsBound(row, start) >= 0 && rowVsBound(row, end) < 0
                : rowVsBound(row, start) <= 0 && rowVsBound(row, end) > 0;
            assert.equal(inBytes, expected);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('handles infinite bounds in every column position', () => {
    const columns: PkColumnType[] = ['integer', 'string', 'integer'];
    const key = (a: bigint, b: string, c: bigint) => encodePrimaryKey(columns, [a, b, c]);
    const all: PkBound[] = [INF_MIN, INF_MIN, INF_MIN];
    assert.equal(encodeBound(columns, all).length, 0, '[INF_MIN, ...] is below everything');
    assert.ok(
      compareBytes(key(INT64_MAX, '\uffff', INT64_MAX), encodeBound(columns, [INF_MAX])) < 0,
    );
    const lo = encodeBound(columns, [5n, INF_MIN, 7n]);
    const hi = encodeBound(columns, [5n, INF_MAX, INT64_MIN]);
    assert.ok(compareBytes(key(4n, '\uffff', INT64_MAX), lo) < 0);
    assert.ok(compareBytes(lo, key(5n, '', INT64_MIN)) < 0);
    assert.ok(compareBytes(key(5n, '\uffff\uffff', INT64_MAX), hi) < 0);
    assert.ok(compareBytes(hi, key(6n, '', INT64_MIN)) < 0);
    const mid = encodeBound(columns, [5n, 'x', INF_MAX]);
    assert.ok(compareBytes(key(5n, 'x', INT64_MAX), mid) < 0);
    assert.ok(compareBytes(mid, key(5n, 'x\u0000', INT64_MIN)) < 0);
    // A partial tuple is the same point as one padded with INF_MIN.
    assert.deepEqual(encodeBound(columns, [5n]), encodeBound(columns, [5n, INF_MIN, INF_MIN]));
  });

  it('rejects wrong values with INVALID_ARGUMENT naming the column', () => {
    throwsCode(
      () => encodePrimaryKey(['integer'], [5 as unknown as bigint]),
      'INVALID_ARGUMENT',
      /column 0 \(integer\) expects a bigint, got a number/,
    );
    throwsCode(
      () => encodePrimaryKey(['integer', 'string'], [1n, 2n]),
      'INVALID_ARGUMENT',
      /column 1 \(string\) expects a string/,
    );
    throwsCode(
      () => encodePrimaryKey(['binary'], ['x']),
      'INVALID_ARGUMENT',
      /column 0 \(binary\)/,
    );
    throwsCode(
      () => encodePrimaryKey(['integer'], [INT64_MAX + 1n]),
      'INVALID_ARGUMENT',
      /outside the signed 64-bit range/,
    );
    throwsCode(
      () => encodePrimaryKey(['integer'], [INT64_MIN - 1n]),
      'INVALID_ARGUMENT',
      /outside/,
    );
    throwsCode(
      () => encodePrimaryKey(['integer', 'integer'], [1n]),
      'INVALID_ARGUMENT',
      /1 values; the schema has 2 columns/,
    );
    throwsCode(
      () => encodePrimaryKey(['string'], ['a\ud800b']),
      'INVALID_ARGUMENT',
      /lone UTF-16 surrogate/,
    );
    throwsCode(
      () => encodePrimaryKey(['integer'], [INF_MIN as unknown as bigint]),
      'INVALID_ARGUMENT',
      /infinite bound/,
    );
    throwsCode(() => encodeBound(['integer'], []), 'INVALID_ARGUMENT', /1\.\.1 values/);
    throwsCode(() => encodeBound(['integer'], [INF_MIN, 1n]), 'INVALID_ARGUMENT', /1\.\.1 values/);
    throwsCode(
      () => encodeBound(['integer', 'string'], [INF_MIN, 1n]),
      'INVALID_ARGUMENT',
      /column 1 \(string\)/,
    );
  });

  it('enforces the column and key size limits with KEY_TOO_LARGE', () => {
    const atLimit = 'x'.repeat(PK_COLUMN_BYTES_MAX);
    assert.deepEqual(decodePrimaryKey(['string'], encodePrimaryKey(['string'], [atLimit])), [
      atLimit,
    ]);
    throwsCode(
      () => encodePrimaryKey(['string'], [atLimit + 'x']),
      'KEY_TOO_LARGE',
      /column 0 \(string\)/,
    );
    // Multi-byte characters count in UTF-8 bytes.
    throwsCode(
      () => encodePrimaryKey(['string'], ['é'.repeat(PK_COLUMN_BYTES_MAX / 2 + 1)]),
      'KEY_TOO_LARGE',
    );
    throwsCode(
      () => encodePrimaryKey(['binary'], [new Uint8Array(PK_COLUMN_BYTES_MAX + 1)]),
      'KEY_TOO_LARGE',
    );
    // Each column within its limit, the escaped whole over PK_BYTES_MAX.
    const zeros = new Uint8Array(PK_COLUMN_BYTES_MAX);
    try {
      encodePrimaryKey(['binary', 'binary'], [zeros, zeros]);
      assert.fail('expected KEY_TOO_LARGE');
    } catch (e) {
      assert.ok(e instanceof TesseraError && e.code === 'KEY_TOO_LARGE');
      assert.equal(e.details?.limit, PK_BYTES_MAX);
      assert.equal(e.details?.actual, 2 * (1 + 2 * PK_COLUMN_BYTES_MAX + 2));
    }
  });

  it('rejects malformed encodings with INVALID_ARGUMENT', () => {
    const good = encodePrimaryKey(['string', 'integer'], ['ab', 1n]);
    throwsCode(
      () => decodePrimaryKey(['integer', 'integer'], good),
      'INVALID_ARGUMENT',
      /column 0 \(integer\) has tag 0x20/,
    );
    throwsCode(
      () => decodePrimaryKey(['string', 'integer'], good.slice(0, -1)),
      'INVALID_ARGUMENT',
      /truncated integer/,
    );
    throwsCode(
      () => decodePrimaryKey(['string', 'integer'], good.slice(0, 3)),
      'INVALID_ARGUMENT',
      /unterminated string/,
    );
    throwsCode(
      () => decodePrimaryKey(['string'], good),
      'INVALID_ARGUMENT',
      /9 bytes after the key/,
    );
    throwsCode(
      () => decodePrimaryKey(['string'], new Uint8Array()),
      'INVALID_ARGUMENT',
      /truncated before column 0/,
    );
    throwsCode(
      () => decodePrimaryKey(['string'], Uint8Array.of(0x20, 0x61, 0x00, 0x02)),
      'INVALID_ARGUMENT',
      /bad escape/,
    );
    throwsCode(
      () => decodePrimaryKey(['string'], Uint8Array.of(0x20, 0xc3, 0x00, 0x01)),
      'INVALID_ARGUMENT',
      /not valid UTF-8/,
    );
  });
});
