// Table schemas: defaults, normalisation, every invalid case with the message
// that names its field, and option changes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { TesseraError } from '../../src/core/errors.ts';
import {
  MAX_VERSIONS_LIMIT,
  MAX_VERSION_OFFSET_SECONDS_MAX,
  TTL_SECONDS_MAX,
  alterTable,
  parseTableSchema,
  pkColumnTypes,
  pkValuesOf,
} from '../../src/table/schema.ts';

const BASE = {
  name: 'orders',
  primaryKey: [
    { name: 'customer', type: 'string' },
    { name: 'orderId', type: 'integer', autoIncrement: true },
  ],
};

function withKey(primaryKey: unknown[]): unknown {
  return { name: 't', primaryKey };
}

/** Asserts INVALID_SCHEMA whose message contains every fragment. */
function rejects(input: unknown, ...fragments: string[]): void {
  assert.throws(
    () => parseTableSchema(input),
    (e: unknown) => {
      assert.ok(e instanceof TesseraError, `expected a TesseraError, got ${String(e)}`);
      assert.equal(e.code, 'INVALID_SCHEMA');
      assert.equal(e.retryable, 'no');
      assert.equal(e.httpStatus, 400);
      assert.equal(e.grpcStatus, 'INVALID_ARGUMENT');
      assert.match(e.message, /^invalid table schema: /);
      for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
      return true;
    },
  );
}

describe('parseTableSchema', () => {
  it('fills in defaults and returns a frozen schema with only known fields', () => {
    const s = parseTableSchema(BASE);
    assert.deepEqual(s, {
      name: 'orders',
      primaryKey: [
        { name: 'customer', type: 'string' },
        { name: 'orderId', type: 'integer', autoIncrement: true },
      ],
      maxVersions: 1,
      ttlSeconds: null,
      maxVersionOffsetSeconds: 86_400,
    });
    assert.ok(Object.isFrozen(s) && Object.isFrozen(s.primaryKey));
    assert.ok(s.primaryKey.every((c) => Object.isFrozen(c)));
    assert.deepEqual(pkColumnTypes(s), ['string', 'integer']);
  });

  it('keeps given options and drops autoIncrement: false', () => {
    const s = parseTableSchema({
      name: '_T9',
      primaryKey: [
        { name: 'a', type: 'binary' },
        { name: 'b', type: 'integer', autoIncrement: false },
        { name: 'c', type: 'string' },
        { name: 'd', type: 'integer' },
      ],
      maxVersions: MAX_VERSIONS_LIMIT,
      ttlSeconds: TTL_SECONDS_MAX,
      maxVersionOffsetSeconds: MAX_VERSION_OFFSET_SECONDS_MAX,
    });
    assert.equal(s.maxVersions, MAX_VERSIONS_LIMIT);
    assert.equal(s.ttlSeconds, TTL_SECONDS_MAX);
    assert.equal(s.maxVersionOffsetSeconds, MAX_VERSION_OFFSET_SECONDS_MAX);
    assert.equal(Object.hasOwn(s.primaryKey[1]!, 'autoIncrement'), false);
    assert.equal(parseTableSchema({ ...BASE, ttlSeconds: null }).ttlSeconds, null);
  });

  it('accepts names up to 255 characters and rejects longer or malformed ones', () => {
    assert.equal(parseTableSchema({ ...BASE, name: 'a'.repeat(255) }).name.length, 255);
    const nameRule = 'must be a letter or _ then up to 254 letters, digits or _';
    rejects({ ...BASE, name: 'a'.repeat(256) }, `name: ${nameRule}`);
    rejects({ ...BASE, name: '1abc' }, `name: ${nameRule}`);
    rejects({ ...BASE, name: '' }, `name: ${nameRule}`);
    rejects({ ...BASE, name: 'a-b' }, `name: ${nameRule}`);
    rejects({ ...BASE, name: 'é' }, `name: ${nameRule}`);
    rejects({ ...BASE, name: 5 }, 'name: must be string, got number');
    rejects(withKey([{ name: 'has space', type: 'string' }]), `primaryKey[0].name: ${nameRule}`);
  });

  it('rejects a missing or non-object input', () => {
    rejects('orders', '(root): must be object, got string');
    rejects(null, '(root): must be object, got null');
    rejects({}, 'name: is required', 'primaryKey: is required');
  });

  it('rejects 0 or more than 4 key columns', () => {
    rejects(withKey([]), 'primaryKey: must have at least 1 entry');
    const five = ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, type: 'string' }));
    rejects(withKey(five), 'primaryKey: must have at most 4 entries');
    rejects({ name: 't', primaryKey: { name: 'a', type: 'string' } }, 'primaryKey: must be array');
  });

  it('rejects unknown column types and missing column fields', () => {
    rejects(
      withKey([{ name: 'a', type: 'double' }]),
      'primaryKey[0].type: must be one of string, integer, binary',
    );
    rejects(withKey([{ name: 'a' }]), 'primaryKey[0].type: is required');
    rejects(withKey([{ type: 'string' }]), 'primaryKey[0].name: is required');
  });

  it('rejects duplicate column names', () => {
    rejects(
      withKey([
        { name: 'a', type: 'string' },
        { name: 'b', type: 'string' },
        { name: 'a', type: 'integer' },
      ]),
      'primaryKey[2].name: duplicates primaryKey[0].name "a"',
    );
  });

  it('rejects autoIncrement on the first, a non-integer, or more than one column', () => {
    rejects(
      withKey([{ name: 'a', type: 'integer', autoIncrement: true }]),
      'primaryKey[0].autoIncrement: the first column is the partition key and cannot be autoIncrement',
    );
    rejects(
      withKey([
        { name: 'a', type: 'string' },
        { name: 'b', type: 'string', autoIncrement: true },
      ]),
      'primaryKey[1].autoIncrement: only an integer column can be autoIncrement, this one is string',
    );
    rejects(
      withKey([
        { name: 'a', type: 'string' },
        { name: 'b', type: 'integer', autoIncrement: true },
        { name: 'c', type: 'integer', autoIncrement: true },
      ]),
      'primaryKey: at most one column can be autoIncrement, found 2',
    );
    rejects(
      withKey([
        { name: 'a', type: 'string' },
        { name: 'b', type: 'integer', autoIncrement: 'yes' },
      ]),
      'primaryKey[1].autoIncrement: must be boolean, got string',
    );
  });

  it('rejects options out of range', () => {
    rejects({ ...BASE, maxVersions: 0 }, 'maxVersions: must be at least 1');
    rejects({ ...BASE, maxVersions: 1001 }, 'maxVersions: must be at most 1000');
    rejects({ ...BASE, maxVersions: 1.5 }, 'maxVersions: must be an integer');
    rejects({ ...BASE, maxVersions: '3' }, 'maxVersions: must be number, got string');
    rejects({ ...BASE, ttlSeconds: 0 }, 'ttlSeconds: must be at least 1');
    rejects({ ...BASE, ttlSeconds: -5 }, 'ttlSeconds: must be at least 1');
    rejects({ ...BASE, ttlSeconds: 2 ** 31 }, `ttlSeconds: must be at most ${TTL_SECONDS_MAX}`);
    rejects({ ...BASE, ttlSeconds: Infinity }, 'ttlSeconds: must be an integer');
    rejects({ ...BASE, maxVersionOffsetSeconds: 0 }, 'maxVersionOffsetSeconds: must be at least 1');
    rejects({ ...BASE, maxVersionOffsetSeconds: null }, 'maxVersionOffsetSeconds: must be number');
  });

  it('rejects unknown fields, at the top and in a column', () => {
    rejects({ ...BASE, maxVersion: 3 }, '(root): unknown field(s): maxVersion');
    rejects(
      withKey([{ name: 'a', type: 'string', partition: true }]),
      'primaryKey[0]: unknown field(s): partition',
    );
  });

  it('reports every problem at once', () => {
    rejects(
      { name: '9', primaryKey: [{ name: 'a', type: 'x' }], maxVersions: 0 },
      'name: must be a letter',
      'primaryKey[0].type: must be one of',
      'maxVersions: must be at least 1',
    );
  });
});

describe('alterTable', () => {
  const schema = parseTableSchema(BASE);

  function rejectsChange(changes: unknown, fragment: string): void {
    assert.throws(
      () => alterTable(schema, changes),
      (e: unknown) =>
        e instanceof TesseraError &&
        e.code === 'INVALID_SCHEMA' &&
        e.message.startsWith('invalid table change: ') &&
        e.message.includes(fragment),
    );
  }

  it('changes options and keeps the rest', () => {
    const next = alterTable(schema, { maxVersions: 5, ttlSeconds: 3600 });
    assert.deepEqual(next, { ...schema, maxVersions: 5, ttlSeconds: 3600 });
    assert.ok(Object.isFrozen(next));
    assert.equal(schema.maxVersions, 1, 'the input schema is unchanged');
    assert.equal(alterTable(next, { ttlSeconds: null }).ttlSeconds, null);
    assert.equal(alterTable(next, { maxVersionOffsetSeconds: 60 }).maxVersionOffsetSeconds, 60);
    assert.deepEqual(alterTable(schema, {}), schema);
  });

  it('rejects renaming and changing the primary key', () => {
    rejectsChange({ name: 'other' }, 'name: a table cannot be renamed');
    rejectsChange({ name: 'orders' }, 'name: a table cannot be renamed');
    rejectsChange(
      { primaryKey: [{ name: 'x', type: 'string' }], maxVersions: 2 },
      'primaryKey: the primary key of a table cannot be changed',
    );
  });

  it('rejects bad options and unknown fields', () => {
    rejectsChange({ maxVersions: 0 }, 'maxVersions: must be at least 1');
    rejectsChange({ ttlSeconds: 1.5 }, 'ttlSeconds: must be an integer');
    rejectsChange({ maxVersionOffsetSeconds: -1 }, 'maxVersionOffsetSeconds: must be at least 1');
    rejectsChange({ ttl: 5 }, '(root): unknown field(s): ttl');
    rejectsChange(null, '(root): must be object, got null');
  });
});

describe('pkValuesOf', () => {
  const schema = parseTableSchema(BASE);

  it('returns the values in key order', () => {
    assert.deepEqual(
      pkValuesOf(schema, [
        ['customer', 'c1'],
        ['orderId', 7n],
      ]),
      ['c1', 7n],
    );
  });

  it('rejects missing, extra or reordered columns', () => {
    for (const pk of [
      [['customer', 'c1']],
      [
        ['orderId', 7n],
        ['customer', 'c1'],
      ],
      [
        ['customer', 'c1'],
        ['orderId', 7n],
        ['x', 1n],
      ],
    ] as const) {
      assert.throws(
        () => pkValuesOf(schema, pk),
        (e: unknown) =>
          e instanceof TesseraError &&
          e.code === 'INVALID_ARGUMENT' &&
          e.message.includes('must name columns [customer, orderId] in order'),
      );
    }
  });
});
