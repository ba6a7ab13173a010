// Conditions of conditional writes (src/table/condition.ts): comparison
// rules, evaluation, limits, and the JSON form (parse, errors, round trip).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { TesseraError } from '../../src/core/errors.ts';
import type { ColumnCondition, RelationOp, RowCondition } from '../../src/table/condition.ts';
import {
  checkColumnCondition,
  checkRowCondition,
  compareAttributeValues,
  CONDITION_DEPTH_MAX,
  CONDITION_TERMS_MAX,
  conditionToJson,
  evaluateColumnCondition,
  parseConditionJson,
  PASS_IF_MISSING_DEFAULT,
} from '../../src/table/condition.ts';
import type { AttributeValue } from '../../src/table/types.ts';

const rel = (
  column: string,
  op: RelationOp,
  value: AttributeValue,
  passIfMissing?: boolean,
): ColumnCondition =>
  passIfMissing === undefined
    ? { kind: 'relation', column, op, value }
    : { kind: 'relation', column, op, value, passIfMissing };

const row: Record<string, AttributeValue> = { age: 31n, name: 'bo', score: 2.5, ok: true };
const latest = (c: string): AttributeValue | undefined => row[c];
const ev = (c: ColumnCondition): boolean => evaluateColumnCondition(c, latest);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof TesseraError) return e.code;
    throw e;
  }
  return 'OK';
}

describe('comparison', () => {
  it('orders values of one type naturally', () => {
    assert.equal(compareAttributeValues(1n, 2n), -1);
    assert.equal(compareAttributeValues(2.5, 2.5), 0);
    assert.equal(compareAttributeValues(true, false), 1);
    assert.ok(compareAttributeValues(Uint8Array.of(1), Uint8Array.of(1, 0))! < 0);
    assert.ok(compareAttributeValues(Uint8Array.of(2), Uint8Array.of(1, 9))! > 0);
    assert.ok(compareAttributeValues('a', 'b')! < 0);
    // Code point order, which UTF-16 `<` gets wrong: U+FFFF sorts below U+10000.
    assert.ok('\u{10000}' < '\uffff');
    assert.ok(compareAttributeValues('\uffff', '\u{10000}')! < 0);
  });

  it('finds values of different types incomparable', () => {
    assert.equal(compareAttributeValues(1n, 1), null);
    assert.equal(compareAttributeValues('1', 1n), null);
    assert.equal(compareAttributeValues(Uint8Array.of(1), '1'), null);
    assert.equal(ev(rel('age', '=', 31)), false);
    assert.equal(ev(rel('age', '!=', 31)), true);
    for (const op of ['>', '>=', '<', '<='] as const) assert.equal(ev(rel('age', op, 31)), false);
  });

  it('agrees with UTF-8 byte order on strings', () => {
    const enc = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        const bytes = Buffer.compare(Buffer.from(enc.encode(a)), Buffer.from(enc.encode(b)));
        assert.equal(Math.sign(compareAttributeValues(a, b)!), bytes);
      }),
      { numRuns: 500, seed: 3 },
    );
  });
});

describe('evaluation', () => {
  it('applies each relation', () => {
    assert.equal(ev(rel('age', '=', 31n)), true);
    assert.equal(ev(rel('age', '>', 30n)), true);
    assert.equal(ev(rel('age', '>=', 32n)), false);
    assert.equal(ev(rel('age', '<', 31n)), false);
    assert.equal(ev(rel('age', '<=', 31n)), true);
    assert.equal(ev(rel('name', '!=', 'bo')), false);
    assert.equal(ev(rel('score', '<', 3)), true);
    assert.equal(ev(rel('ok', '=', true)), true);
  });

  it('passes a relation on a missing column unless passIfMissing is false', () => {
    assert.equal(PASS_IF_MISSING_DEFAULT, true);
    assert.equal(ev(rel('nope', '=', 1n)), true);
    assert.equal(ev(rel('nope', '=', 1n, false)), false);
    assert.equal(ev(rel('nope', '!=', 1n, false)), false);
  });

  it('combines with AND, OR and NOT', () => {
    const t = rel('age', '=', 31n);
    const f = rel('age', '=', 0n);
    assert.equal(ev({ kind: 'and', terms: [t, t] }), true);
    assert.equal(ev({ kind: 'and', terms: [t, f] }), false);
    assert.equal(ev({ kind: 'or', terms: [f, t] }), true);
    assert.equal(ev({ kind: 'or', terms: [f, f] }), false);
    assert.equal(ev({ kind: 'not', term: f }), true);
    assert.equal(ev({ kind: 'not', term: { kind: 'and', terms: [t, f] } }), true);
  });

  it('checks row existence first, then the column condition', () => {
    const existing = { exists: true, latest };
    const missing = { exists: false, latest: () => undefined };
    const cases: Array<[RowCondition, typeof existing, string]> = [
      [{ rowExistence: 'IGNORE' }, missing, 'OK'],
      [{ rowExistence: 'EXPECT_EXIST' }, missing, 'CONDITION_FAILED'],
      [{ rowExistence: 'EXPECT_EXIST' }, existing, 'OK'],
      [{ rowExistence: 'EXPECT_NOT_EXIST' }, existing, 'CONDITION_FAILED'],
      [{ rowExistence: 'EXPECT_NOT_EXIST' }, missing, 'OK'],
      [
        { rowExistence: 'IGNORE', columnCondition: rel('age', '<', 18n) },
        existing,
        'CONDITION_FAILED',
      ],
      [{ rowExistence: 'EXPECT_EXIST', columnCondition: rel('age', '>', 18n) }, existing, 'OK'],
    ];
    for (const [cond, r, want] of cases) {
      assert.equal(
        code(() => checkRowCondition(cond, r)),
        want,
        JSON.stringify(cond, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      );
    }
  });
});

describe('limits', () => {
  const nest = (depth: number): ColumnCondition =>
    depth === 1 ? rel('a', '=', 1n) : { kind: 'not', term: nest(depth - 1) };

  it('bounds depth and terms', () => {
    assert.equal(
      code(() => checkColumnCondition(nest(CONDITION_DEPTH_MAX))),
      'OK',
    );
    assert.equal(
      code(() => checkColumnCondition(nest(CONDITION_DEPTH_MAX + 1))),
      'INVALID_ARGUMENT',
    );
    const wide = (n: number): ColumnCondition => ({
      kind: 'or',
      terms: Array.from({ length: n }, () => rel('a', '=', 1n)),
    });
    assert.equal(
      code(() => checkColumnCondition(wide(CONDITION_TERMS_MAX - 1))),
      'OK',
    );
    assert.equal(
      code(() => checkColumnCondition(wide(CONDITION_TERMS_MAX))),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => checkColumnCondition({ kind: 'and', terms: [] })),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => checkColumnCondition(rel('a', '=', 2n ** 63n))),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => checkColumnCondition(rel('a', '=', Infinity))),
      'INVALID_ARGUMENT',
    );
  });
});

describe('JSON form', () => {
  it('parses the documented example and value conventions', () => {
    const parsed = parseConditionJson({
      expect: 'exist',
      if: {
        and: [
          { column: 'age', op: '>', value: 30 },
          { not: { column: 'name', op: '=', value: 'x', passIfMissing: false } },
          { column: 'd', op: '=', value: 1.5 },
          { column: 'big', op: '=', value: { $int: '9223372036854775807' } },
          { column: 'd1', op: '=', value: { $double: 1 } },
          { column: 'bin', op: '=', value: { $binary: 'AQI=' } },
          { column: 'b', op: '!=', value: true },
        ],
      },
    });
    assert.deepEqual(parsed, {
      rowExistence: 'EXPECT_EXIST',
      columnCondition: {
        kind: 'and',
        terms: [
          rel('age', '>', 30n),
          { kind: 'not', term: rel('name', '=', 'x', false) },
          rel('d', '=', 1.5),
          rel('big', '=', 2n ** 63n - 1n),
          rel('d1', '=', 1),
          rel('bin', '=', Uint8Array.of(1, 2)),
          rel('b', '!=', true),
        ],
      },
    });
    assert.equal(
      typeof (parsed.columnCondition as { terms: Array<{ value: unknown }> }).terms[4]!.value,
      'number',
    );
    assert.deepEqual(parseConditionJson({}), { rowExistence: 'IGNORE' });
    assert.deepEqual(parseConditionJson({ expect: 'not_exist' }), {
      rowExistence: 'EXPECT_NOT_EXIST',
    });
  });

  it('rejects malformed conditions with INVALID_ARGUMENT and a clear message', () => {
    const bad: unknown[] = [
      null,
      { expect: 'maybe' },
      { if: { column: 'a', op: '~', value: 1 } },
      { if: { column: 'a', op: '=', value: 1, extra: 1 } },
      { if: { column: '', op: '=', value: 1 } },
      { if: { column: 'a', op: '=', value: 2 ** 60 } },
      { if: { column: 'a', op: '=', value: { $int: '9223372036854775808' } } },
      { if: { column: 'a', op: '=', value: { $int: '1.5' } } },
      { if: { column: 'a', op: '=', value: { $binary: 'A' } } },
      { if: { and: [] } },
      {
        if: {
          or: Array.from({ length: CONDITION_TERMS_MAX }, () => ({
            column: 'a',
            op: '=',
            value: 1,
          })),
        },
      },
    ];
    for (const json of bad)
      assert.equal(
        code(() => parseConditionJson(json)),
        'INVALID_ARGUMENT',
        JSON.stringify(json),
      );
    let deep: unknown = { column: 'a', op: '=', value: 1 };
    for (let i = 0; i < 10_000; i++) deep = { not: deep };
    assert.equal(
      code(() => parseConditionJson({ if: deep })),
      'INVALID_ARGUMENT',
    );
    assert.throws(
      () => parseConditionJson({ if: { column: 'a', op: '=', value: 2 ** 60 } }),
      /\$int/,
    );
  });

  it('round-trips through JSON text', () => {
    const value: fc.Arbitrary<AttributeValue> = fc.oneof(
      fc.string(),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
      fc.boolean(),
      fc.uint8Array({ maxLength: 8 }),
    );
    const { tree } = fc.letrec<{ tree: ColumnCondition }>((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.record(
          {
            kind: fc.constant('relation' as const),
            column: fc.string({ minLength: 1, maxLength: 5 }),
            op: fc.constantFrom<RelationOp>('=', '!=', '>', '>=', '<', '<='),
            value,
            passIfMissing: fc.boolean(),
          },
          { requiredKeys: ['kind', 'column', 'op', 'value'] },
        ),
        fc.record({
          kind: fc.constant('and' as const),
          terms: fc.array(tie('tree'), { minLength: 1, maxLength: 3 }),
        }),
        fc.record({
          kind: fc.constant('or' as const),
          terms: fc.array(tie('tree'), { minLength: 1, maxLength: 3 }),
        }),
        fc.record({ kind: fc.constant('not' as const), term: tie('tree') }),
      ),
    }));
    const condition = fc.record(
      {
        rowExistence: fc.constantFrom('IGNORE', 'EXPECT_EXIST', 'EXPECT_NOT_EXIST' as const),
        columnCondition: tree,
      },
      { requiredKeys: ['rowExistence'] },
    );
    fc.assert(
      fc.property(condition, (c) => {
        let valid = true;
        try {
          checkColumnCondition(c.columnCondition ?? rel('a', '=', 1n));
        } catch {
          valid = false;
        }
        fc.pre(valid);
        // structuredClone: plain prototypes, as parsing produces.
        assert.deepEqual(
          parseConditionJson(JSON.parse(JSON.stringify(conditionToJson(c)))),
          structuredClone(c),
        );
      }),
      { numRuns: 500, seed: 5 },
    );
  });
});
