// Attribute values: exact-type storage round trips, the JSON conventions for
// attributes, key values and bounds, limits and malformed input. Canary: a
// JSON form that drops the integer/double distinction must fail the property.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { TesseraError } from '../../src/core/errors.ts';
import { INT64_MAX, INT64_MIN } from '../../src/table/int64.ts';
import { INF_MAX, INF_MIN, type AttributeValue, type PkColumnType } from '../../src/table/types.ts';
import {
  VALUE_BYTES_MAX,
  attributeFromJson,
  attributeToJson,
  attributeType,
  decodeAttribute,
  encodeAttribute,
  pkBoundFromJson,
  pkBoundToJson,
  pkValueFromJson,
  pkValueToJson,
} from '../../src/table/values.ts';
import { throwsCode } from '../support/errors.ts';

const int64Arb = fc.oneof(
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
  fc.constantFrom(INT64_MIN, INT64_MAX, 0n, -1n, 2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n)),
  fc.bigInt({ min: -1000n, max: 1000n }),
);

const doubleArb = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer().map((n) => n * 1.0),
  fc.constantFrom(0, -0, 1, 0.5, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 60, -(2 ** 53)),
);

const stringArb = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', '\u0000', '\ufeffbom', '{"$int":"1"}', '😀'),
);

const binaryArb = fc.uint8Array({ maxLength: 64 }).map((b) => new Uint8Array(b));

const attributeArb: fc.Arbitrary<AttributeValue> = fc.oneof(
  stringArb,
  int64Arb,
  doubleArb,
  fc.boolean(),
  binaryArb,
);

/** Equal including the type and -0 (deepEqual treats bigint 1n and number 1 as different). */
function sameValue(a: AttributeValue, b: AttributeValue): boolean {
  if (attributeType(a) !== attributeType(b)) return false;
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return (
      Object.getPrototypeOf(b) === Uint8Array.prototype &&
      a.length === b.length &&
      a.every((x, i) => x === b[i])
    );
  }
  return Object.is(a, b);
}

type ToJson = (v: AttributeValue) => unknown;
type FromJson = (json: unknown) => AttributeValue;

/** Through JSON text and back, every value keeps its type and value (-0 prints as 0). */
function jsonTextRoundTrip(toJson: ToJson, fromJson: FromJson) {
  return fc.property(attributeArb, (v) => {
    const expected = Object.is(v, -0) ? 0 : v;
    return sameValue(fromJson(JSON.parse(JSON.stringify(toJson(v)))), expected);
  });
}

/** Canary: emits every number, integer or double, as a plain JSON number. */
const naiveToJson: ToJson = (v) =>
  typeof v === 'bigint' ? Number(v) : v instanceof Uint8Array ? attributeToJson(v) : v;

describe('attribute storage codec', () => {
  it('round-trips every value with its exact type', () => {
    fc.assert(
      fc.property(attributeArb, (v) => sameValue(decodeAttribute(encodeAttribute(v)), v)),
      { numRuns: 500 },
    );
  });

  it('keeps integral doubles and small integers apart', () => {
    const one = decodeAttribute(encodeAttribute(1));
    const oneN = decodeAttribute(encodeAttribute(1n));
    assert.equal(typeof one, 'number');
    assert.equal(typeof oneN, 'bigint');
    assert.deepEqual([...encodeAttribute(1n)], [2, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual([...encodeAttribute(true)], [4, 1]);
    assert.deepEqual([...encodeAttribute('a')], [1, 0x61]);
    assert.equal(attributeType(1), 'double');
    assert.equal(attributeType(1n), 'integer');
    assert.equal(attributeType(new Uint8Array()), 'binary');
  });

  it('rejects out-of-range integers, non-finite doubles and lone surrogates', () => {
    throwsCode(() => encodeAttribute(INT64_MAX + 1n), 'INVALID_ARGUMENT', /signed 64-bit/);
    throwsCode(() => encodeAttribute(INT64_MIN - 1n), 'INVALID_ARGUMENT', /signed 64-bit/);
    throwsCode(() => encodeAttribute(NaN), 'INVALID_ARGUMENT', /must be finite/);
    throwsCode(() => encodeAttribute(-Infinity), 'INVALID_ARGUMENT', /must be finite/);
    throwsCode(() => encodeAttribute('\udc00'), 'INVALID_ARGUMENT', /lone UTF-16 surrogate/);
  });

  it('enforces VALUE_BYTES_MAX on strings (in UTF-8 bytes) and binary', () => {
    assert.equal(encodeAttribute(new Uint8Array(VALUE_BYTES_MAX)).length, VALUE_BYTES_MAX + 1);
    throwsCode(() => encodeAttribute(new Uint8Array(VALUE_BYTES_MAX + 1)), 'VALUE_TOO_LARGE');
    throwsCode(() => encodeAttribute('x'.repeat(VALUE_BYTES_MAX + 1)), 'VALUE_TOO_LARGE');
    throwsCode(() => encodeAttribute('é'.repeat(VALUE_BYTES_MAX / 2 + 1)), 'VALUE_TOO_LARGE');
    try {
      encodeAttribute(new Uint8Array(VALUE_BYTES_MAX + 5));
      assert.fail('expected VALUE_TOO_LARGE');
    } catch (e) {
      assert.ok(e instanceof TesseraError);
      assert.deepEqual(e.details, { limit: VALUE_BYTES_MAX, actual: VALUE_BYTES_MAX + 5 });
    }
  });

  it('rejects malformed encodings', () => {
    const bad: [number[], RegExp][] = [
      [[], /empty/],
      [[9, 1], /unknown type byte 0x9/],
      [[2, 1, 2], /body of 2 bytes, expected 8/],
      [[3, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0], /must be finite/],
      [[4, 2], /boolean/],
      [[4], /boolean/],
      [[1, 0xff], /not valid UTF-8/],
    ];
    for (const [bytes, message] of bad) {
      throwsCode(() => decodeAttribute(Uint8Array.from(bytes)), 'INVALID_ARGUMENT', message);
    }
  });

  it('decodes binary as an independent copy', () => {
    const stored = encodeAttribute(Uint8Array.of(1, 2, 3));
    const value = decodeAttribute(stored) as Uint8Array;
    stored[1] = 9;
    assert.deepEqual([...value], [1, 2, 3]);
  });
});

describe('attribute JSON', () => {
  it('follows the documented convention', () => {
    const cases: [unknown, AttributeValue][] = [
      ['hi', 'hi'],
      [true, true],
      [42, 42n],
      [-7, -7n],
      [1.5, 1.5],
      [Number.MAX_SAFE_INTEGER, 2n ** 53n - 1n],
      [{ $int: '9223372036854775807' }, INT64_MAX],
      [{ $int: '-9223372036854775808' }, INT64_MIN],
      [{ $int: 12 }, 12n],
      [{ $double: 1 }, 1],
      [{ $double: 2.5 }, 2.5],
      [{ $binary: 'AAH/' }, Uint8Array.of(0, 1, 255)],
      [{ $binary: '' }, new Uint8Array()],
    ];
    for (const [json, value] of cases) {
      assert.ok(sameValue(attributeFromJson(json), value), `${JSON.stringify(json)}`);
    }
    assert.deepEqual(attributeToJson(42n), 42);
    assert.deepEqual(attributeToJson(2n ** 53n), { $int: '9007199254740992' });
    assert.deepEqual(attributeToJson(3), { $double: 3 });
    assert.deepEqual(attributeToJson(0.25), 0.25);
    assert.deepEqual(attributeToJson(Uint8Array.of(0, 1, 255)), { $binary: 'AAH/' });
    assert.deepEqual(attributeToJson(false), false);
  });

  it('round-trips every value through JSON text', () => {
    fc.assert(
      jsonTextRoundTrip(attributeToJson, (j) => attributeFromJson(j)),
      { numRuns: 500 },
    );
  });

  it('round-trips every value as a JSON object, -0 included', () => {
    fc.assert(
      fc.property(attributeArb, (v) => sameValue(attributeFromJson(attributeToJson(v)), v)),
      { numRuns: 300 },
    );
  });

  it('canary: the round trip rejects a JSON form without $int and $double', () => {
    const result = fc.check(
      jsonTextRoundTrip(naiveToJson, (j) => attributeFromJson(j)),
      { numRuns: 300 },
    );
    assert.equal(result.failed, true, 'integral doubles must come back as integers there');
  });

  it('rejects integers beyond 2^53 given as JSON numbers, pointing at $int', () => {
    throwsCode(() => attributeFromJson(2 ** 53), 'INVALID_ARGUMENT', /\{"\$int": "<decimal>"\}/);
    throwsCode(() => attributeFromJson(-(2 ** 60)), 'INVALID_ARGUMENT', /beyond 2\^53/);
    throwsCode(() => attributeFromJson(1e300), 'INVALID_ARGUMENT', /\$double/);
    throwsCode(() => attributeFromJson({ $int: 2 ** 53 }), 'INVALID_ARGUMENT', /beyond 2\^53/);
  });

  it('rejects malformed JSON forms', () => {
    const bad: [unknown, RegExp][] = [
      [null, /got null/],
      [[1], /got an array/],
      [{}, /exactly one of the keys/],
      [{ a: 1 }, /exactly one of the keys .* got \{a\}/],
      [{ $int: '1', $double: 1 }, /exactly one of the keys/],
      [{ $int: 'abc' }, /decimal integer string/],
      [{ $int: '01' }, /decimal integer string/],
      [{ $int: '1.5' }, /decimal integer string/],
      [{ $int: '9223372036854775808' }, /signed 64-bit/],
      [{ $int: '1'.repeat(40) }, /outside 64 bits/],
      [{ $double: '1' }, /takes a JSON number/],
      [{ $binary: 'AAH' }, /base64/],
      [{ $binary: 'A*==' }, /base64/],
      [{ $binary: 5 }, /base64/],
      [{ $inf: 'min' }, /scan bound, not an attribute value/],
    ];
    for (const [json, message] of bad) {
      throwsCode(() => attributeFromJson(json), 'INVALID_ARGUMENT', message);
    }
    throwsCode(
      () => attributeFromJson({ $int: 'x' }, 'column price'),
      'INVALID_ARGUMENT',
      /^column price:/,
    );
  });

  it('enforces VALUE_BYTES_MAX on base64 input', () => {
    const big = 'A'.repeat(Math.ceil((VALUE_BYTES_MAX + 1) / 3) * 4);
    throwsCode(() => attributeFromJson({ $binary: big }), 'VALUE_TOO_LARGE');
  });
});

describe('primary key JSON', () => {
  const pkArb = fc.oneof(
    stringArb.map((v) => ['string', v] as const),
    int64Arb.map((v) => ['integer', v] as const),
    binaryArb.map((v) => ['binary', v] as const),
  );

  it('round-trips key values and bounds through JSON text, by column type', () => {
    fc.assert(
      fc.property(pkArb, fc.constantFrom(undefined, INF_MIN, INF_MAX), ([type, v], inf) => {
        const text = JSON.stringify(pkValueToJson(v));
        assert.ok(sameValue(pkValueFromJson(type, JSON.parse(text)), v));
        const bound = inf ?? v;
        const back = pkBoundFromJson(type, JSON.parse(JSON.stringify(pkBoundToJson(bound))));
        if (inf !== undefined) assert.equal(back, inf);
        else assert.ok(sameValue(back as AttributeValue, v));
      }),
      { numRuns: 500 },
    );
  });

  it('reads the documented forms', () => {
    assert.equal(pkValueFromJson('integer', 5), 5n);
    assert.equal(pkValueFromJson('integer', { $int: '-9223372036854775808' }), INT64_MIN);
    assert.equal(pkValueFromJson('string', 'k'), 'k');
    assert.deepEqual(pkValueFromJson('binary', { $binary: 'AA==' }), Uint8Array.of(0));
    assert.equal(pkBoundFromJson('string', { $inf: 'min' }), INF_MIN);
    assert.equal(pkBoundFromJson('integer', { $inf: 'max' }), INF_MAX);
    assert.deepEqual(pkBoundToJson(INF_MAX), { $inf: 'max' });
    assert.deepEqual(pkValueToJson(INT64_MAX), { $int: '9223372036854775807' });
  });

  it('rejects forms that do not fit the column type', () => {
    const bad: [PkColumnType, unknown, RegExp][] = [
      ['string', 5, /\(string\): expected a JSON string, got a number/],
      ['string', { $binary: 'AA==' }, /expected a JSON string, got an object/],
      ['integer', '5', /\(integer\): expected a JSON integer or \{"\$int": "..."\}/],
      ['integer', 1.5, /expected a JSON integer/],
      ['integer', 2 ** 53, /beyond 2\^53/],
      ['integer', { $double: 1 }, /expected a JSON integer/],
      ['binary', 'AA==', /\(binary\): expected \{"\$binary": "<base64>"\}/],
      ['integer', { $inf: 'min' }, /expected a JSON integer/],
      ['integer', null, /got null/],
    ];
    for (const [type, json, message] of bad) {
      throwsCode(() => pkValueFromJson(type, json), 'INVALID_ARGUMENT', message);
    }
    throwsCode(
      () => pkBoundFromJson('string', { $inf: 'top' }),
      'INVALID_ARGUMENT',
      /"min" or "max"/,
    );
    throwsCode(
      () => pkBoundFromJson('string', { $inf: 'min', x: 1 }),
      'INVALID_ARGUMENT',
      /exactly one/,
    );
  });
});
