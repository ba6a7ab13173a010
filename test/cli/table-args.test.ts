/**
 * The arguments of `tessera table ...` and `tessera row ...`: flags and
 * JSON arguments parsed into what the client takes, and clear
 * INVALID_ARGUMENT errors otherwise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  boundFromJsonArg,
  cellsFromJson,
  conditionFromFlags,
  parseJsonArg,
  parsePkSpec,
  pkFromJsonArg,
  scanFromFlags,
  scanPageJson,
  tableSchemaFromFlags,
  updateFromJsonArg,
} from '../../src/cli/table-args.ts';
import { TesseraError } from '../../src/core/errors.ts';
import { INF_MAX, INF_MIN } from '../../src/table/types.ts';

const invalidArgument = (pattern: RegExp) => (e: unknown) =>
  e instanceof TesseraError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message);

describe('table and row CLI arguments', () => {
  it('--pk and the create flags make a schema', () => {
    assert.deepEqual(parsePkSpec('id:integer,name:string'), [
      { name: 'id', type: 'integer' },
      { name: 'name', type: 'string' },
    ]);
    assert.deepEqual(
      tableSchemaFromFlags('users', {
        pk: 'region:string, id:integer',
        autoIncrement: 'id',
        maxVersions: '3',
        ttl: '86400',
      }),
      {
        name: 'users',
        primaryKey: [
          { name: 'region', type: 'string' },
          { name: 'id', type: 'integer', autoIncrement: true },
        ],
        maxVersions: 3,
        ttlSeconds: 86400,
      },
    );
    assert.deepEqual(tableSchemaFromFlags('t', { pk: 'k:binary' }), {
      name: 't',
      primaryKey: [{ name: 'k', type: 'binary' }],
    });
    assert.throws(() => parsePkSpec('id'), invalidArgument(/--pk: column 1 "id" is not NAME:TYPE/));
    assert.throws(() => parsePkSpec('id:double'), invalidArgument(/type must be one of/));
    assert.throws(() => parsePkSpec('id:integer', 'x'), invalidArgument(/not a --pk column/));
    assert.throws(() => tableSchemaFromFlags('t', {}), invalidArgument(/--pk is required/));
    assert.throws(
      () => tableSchemaFromFlags('t', { pk: 'id:integer', maxVersions: '0' }),
      invalidArgument(/--max-versions must be an integer >= 1/),
    );
  });

  it('JSON arguments decode to model values', () => {
    assert.throws(() => parseJsonArg('{', 'row'), invalidArgument(/^row: not JSON/));
    assert.deepEqual(
      cellsFromJson(
        parseJsonArg(
          '{"id":1,"name":"ann","score":1.5,"d":{"$double":2},"b":{"$binary":"AAE="},"v":{"value":"x","version":5}}',
          'row',
        ),
        'row',
      ),
      {
        id: 1n,
        name: 'ann',
        score: 1.5,
        d: 2,
        b: Uint8Array.of(0, 1),
        v: { value: 'x', version: 5 },
      },
    );
    assert.throws(
      () => cellsFromJson({ v: { value: 1, version: 'now' } }, 'row'),
      invalidArgument(/row.v: a versioned value/),
    );
    assert.deepEqual(pkFromJsonArg({ region: 'eu', id: { $int: '9007199254740993' } }, 'pk'), {
      region: 'eu',
      id: 9007199254740993n,
    });
    assert.throws(() => pkFromJsonArg({ id: 1.5 }, 'pk'), invalidArgument(/pk.id/));
    assert.deepEqual(boundFromJsonArg({ region: 'eu', id: { $inf: 'min' } }, '--start'), {
      region: 'eu',
      id: INF_MIN,
    });
    assert.equal(boundFromJsonArg({ id: { $inf: 'max' } }, '--end').id, INF_MAX);
  });

  it('--expect and --if make a row condition', () => {
    assert.equal(conditionFromFlags({}), undefined);
    assert.deepEqual(conditionFromFlags({ expect: 'not-exist' }), {
      rowExistence: 'EXPECT_NOT_EXIST',
    });
    assert.deepEqual(
      conditionFromFlags({ expect: 'exist', if: '{"column":"n","op":">","value":1}' }),
      {
        rowExistence: 'EXPECT_EXIST',
        columnCondition: { kind: 'relation', column: 'n', op: '>', value: 1n },
      },
    );
    assert.throws(() => conditionFromFlags({ expect: 'maybe' }), invalidArgument(/--expect/));
    assert.throws(
      () => conditionFromFlags({ if: '{"column":"n","op":"~","value":1}' }),
      invalidArgument(/^condition:/),
    );
  });

  it('the update JSON decodes every part', () => {
    assert.deepEqual(
      updateFromJsonArg({
        put: { name: 'bo' },
        delete: ['old'],
        deleteVersions: [{ column: 'name', version: 7 }],
        increment: { visits: 1 },
      }),
      {
        put: { name: 'bo' },
        delete: ['old'],
        deleteVersions: [{ column: 'name', version: 7 }],
        increment: { visits: 1n },
      },
    );
    assert.throws(() => updateFromJsonArg({ set: {} }), invalidArgument(/unknown field\(s\) set/));
    assert.throws(
      () => updateFromJsonArg({ increment: { n: 1.5 } }),
      invalidArgument(/increment.n: expected an integer/),
    );
  });

  it('row scan flags make the scan; its page prints nextExclusive only when set', () => {
    assert.deepEqual(scanFromFlags({}), {});
    assert.deepEqual(
      scanFromFlags({
        start: '{"user": "m"}',
        startExclusive: true,
        end: '{"user": {"$inf": "min"}}',
        limit: '10',
        backward: true,
        maxVersions: '2',
        serializable: true,
      }),
      {
        start: { user: 'm' },
        startExclusive: true,
        end: { user: INF_MIN },
        limit: 10,
        direction: 'backward',
        maxVersions: 2,
        consistency: 'serializable',
      },
    );
    assert.throws(() => scanFromFlags({ limit: '0' }), invalidArgument(/--limit/));
    const row = { primaryKey: { user: 'c', seq: 1n }, columns: { n: [{ value: 2n, version: 5 }] } };
    assert.deepEqual(
      scanPageJson({ rows: [row], next: { user: 'c', seq: 2n }, nextExclusive: false }),
      {
        rows: [{ primaryKey: { user: 'c', seq: 1 }, columns: { n: [{ value: 2, version: 5 }] } }],
        next: { user: 'c', seq: 2 },
      },
    );
    assert.deepEqual(scanPageJson({ rows: [], next: { user: 'm' }, nextExclusive: true }), {
      rows: [],
      next: { user: 'm' },
      nextExclusive: true,
    });
    assert.deepEqual(scanPageJson({ rows: [], next: null, nextExclusive: false }), {
      rows: [],
      next: null,
    });
  });
});
