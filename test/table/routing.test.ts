// Routing of table rows to ranges: hex keeps byte order, a row's range by its
// partition key is the range whose row span holds its full key, split keys
// inside a table must be partition keys, and the CLI's split list.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { splitKeyOf, splitList } from '../../src/cli/split-args.ts';
import { rangeId } from '../../src/core/ids.ts';
import { initialDescriptors, RangeMap } from '../../src/server/meta.ts';
import { compareBytes, encodePrimaryKey } from '../../src/table/key-codec.ts';
import {
  checkSplitKey,
  compareRoutingKeys,
  fromHex,
  partitionSplitKey,
  routingKeyAt,
  rowRoutingKey,
  rowSpanOf,
  tableRoutingKey,
  tableRowsEnd,
  tableRowsPrefix,
  toHex,
} from '../../src/table/routing.ts';
import type { PkColumnType } from '../../src/table/types.ts';
import { throwsCode } from '../support/errors.ts';

const sign = (n: number): number => Math.sign(n);
const TYPES: PkColumnType[] = ['string', 'integer'];

describe('routing keys', () => {
  it('hex round-trips and keeps byte order', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ maxLength: 20 }), (a, b) => {
        assert.deepEqual(fromHex(toHex(a)), a);
        assert.equal(
          sign(compareRoutingKeys(routingKeyAt('t', a), routingKeyAt('t', b))),
          sign(compareBytes(a, b)),
        );
      }),
      { numRuns: 500 },
    );
    assert.equal(fromHex('abc'), null);
    assert.equal(fromHex('AB'), null);
  });

  it("a table's rows lie between its start and end, apart from other tables", () => {
    const keys = [
      tableRoutingKey('a'),
      tableRowsPrefix('a'),
      routingKeyAt('a', Uint8Array.of(0xff, 0xff)),
      tableRowsEnd('a'),
      tableRoutingKey('a0'),
      tableRoutingKey('ab'),
    ];
    const sorted = [...keys].sort(compareRoutingKeys);
    assert.deepEqual(sorted, keys);
  });

  it('the range of a row by its partition key holds its full key (random splits)', () => {
    const row = fc.tuple(fc.string({ maxLength: 4 }), fc.bigInt({ min: -5n, max: 5n }));
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ maxLength: 4 }), { maxLength: 6 }),
        fc.array(row, { minLength: 1, maxLength: 20 }),
        (partitions, rows) => {
          const splits = [
            tableRoutingKey('t'),
            ...partitions.map((p) => partitionSplitKey('t', 'string', p)),
            tableRoutingKey('u'),
          ].sort(compareRoutingKeys);
          const map = new RangeMap(initialDescriptors([...new Set(splits)]));
          for (const [p, n] of rows) {
            const key = encodePrimaryKey(TYPES, [p, n]);
            const routed = map.lookup(rowRoutingKey('t', TYPES, key))!;
            const holding = map.ranges.filter((d) => {
              const span = rowSpanOf('t', d.start, d.end);
              return (
                span !== null &&
                (span.start === null || compareBytes(span.start, key) <= 0) &&
                (span.end === null || compareBytes(key, span.end) < 0)
              );
            });
            assert.deepEqual(
              holding.map((d) => d.id),
              [routed.id],
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rowSpanOf: ranges outside the table hold none of it; inside, the split bytes', () => {
    const m = partitionSplitKey('t', 'string', 'm');
    assert.equal(rowSpanOf('t', '', tableRoutingKey('t')), null);
    assert.equal(rowSpanOf('t', tableRoutingKey('u'), null), null);
    assert.deepEqual(rowSpanOf('t', '', null), { start: null, end: null });
    assert.deepEqual(rowSpanOf('t', tableRoutingKey('t'), m), {
      start: null,
      end: encodePrimaryKey(['string'], ['m']),
    });
    assert.deepEqual(rowSpanOf('t', m, tableRoutingKey('u')), {
      start: encodePrimaryKey(['string'], ['m']),
      end: null,
    });
  });

  it('split keys inside a table must be one partition key', () => {
    checkSplitKey('k3');
    checkSplitKey(tableRoutingKey('t'));
    checkSplitKey(partitionSplitKey('t', 'integer', -7n));
    checkSplitKey(partitionSplitKey('t', 'binary', Uint8Array.of(0, 1)));
    const two = encodePrimaryKey(TYPES, ['a', 1n]);
    for (const bad of [
      tableRowsPrefix('t') + 'zz',
      tableRowsPrefix('t') + 'abc',
      tableRowsPrefix('t'),
      routingKeyAt('t', two),
      routingKeyAt('t', Uint8Array.of(0x10, 1, 2)),
    ]) {
      throwsCode(() => checkSplitKey(bad), 'INVALID_ARGUMENT');
      throwsCode(() => initialDescriptors([bad]), 'INVALID_ARGUMENT');
    }
  });

  it('RangeMap.lookupBefore: the range of the keys just below', () => {
    const map = new RangeMap(initialDescriptors(['g', 'p']));
    assert.equal(map.lookupBefore('p')?.id, rangeId(3));
    assert.equal(map.lookupBefore('p0')?.id, rangeId(4));
    assert.equal(map.lookupBefore('a')?.id, rangeId(2));
    assert.equal(map.lookupBefore(''), undefined);
  });
});

describe('--initial-splits', () => {
  it('reads keys, table starts and partition keys of each type, in key order', () => {
    assert.equal(splitKeyOf('k3'), 'k3');
    assert.equal(splitKeyOf('table:users'), tableRoutingKey('users'));
    assert.equal(splitKeyOf('table:users:string:a:b'), partitionSplitKey('users', 'string', 'a:b'));
    assert.equal(splitKeyOf('table:ids:integer:-100'), partitionSplitKey('ids', 'integer', -100n));
    assert.equal(
      splitKeyOf('table:blobs:binary:AAE='),
      partitionSplitKey('blobs', 'binary', Uint8Array.of(0, 1)),
    );
    assert.deepEqual(splitList(''), []);
    assert.deepEqual(splitList('table:t:integer:5,m,table:t'), [
      tableRoutingKey('t'),
      partitionSplitKey('t', 'integer', 5n),
      'm',
    ]);
  });

  it('rejects what is not a split', () => {
    for (const bad of [
      'table:bad-name',
      'table:t:float:1',
      'table:t:integer:1.5',
      'table:t:integer:99999999999999999999',
      'table:t:binary:%%',
    ]) {
      throwsCode(() => splitKeyOf(bad), 'INVALID_ARGUMENT');
    }
  });
});
