/**
 * The client's range map: `lookup` finds the range holding a key,
 * `lookupBefore` the range holding the keys just below it (`start < key <=
 * end`), both in UTF-8 byte order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RangeCache, type ClientRange } from '../../src/client/range-cache.ts';

const range = (id: number, start: string, end: string | null): ClientRange => ({
  id,
  start,
  end,
  leaderHttp: null,
});

// Given out of order: the cache sorts by start key.
const cache = new RangeCache([range(3, 'm', 't'), range(2, '', 'm'), range(4, 't', null)]);
const idOf = (r: ClientRange | undefined): number | undefined => r?.id;

describe('RangeCache', () => {
  it('lookup: the range whose start <= key < end', () => {
    assert.deepEqual(
      cache.ranges.map((r) => r.id),
      [2, 3, 4],
    );
    assert.equal(idOf(cache.lookup('')), 2);
    assert.equal(idOf(cache.lookup('a')), 2);
    assert.equal(idOf(cache.lookup('lzzz')), 2);
    assert.equal(idOf(cache.lookup('m')), 3, 'a range starts at its start key');
    assert.equal(idOf(cache.lookup('m\u0000')), 3);
    assert.equal(idOf(cache.lookup('t')), 4);
    assert.equal(idOf(cache.lookup('zzz')), 4);
  });

  it('lookupBefore: the range whose start < key <= end', () => {
    assert.equal(cache.lookupBefore(''), undefined, 'no key lies below the empty key');
    assert.equal(idOf(cache.lookupBefore('a')), 2);
    assert.equal(idOf(cache.lookupBefore('m')), 2, 'below a boundary: the range that ends there');
    assert.equal(idOf(cache.lookupBefore('m\u0000')), 3, 'just above a boundary: its range');
    assert.equal(idOf(cache.lookupBefore('t')), 3);
    assert.equal(idOf(cache.lookupBefore('u')), 4);
    assert.equal(new RangeCache([]).lookupBefore('a'), undefined);
    // Unlike lookup, which names the range starting at a boundary.
    assert.equal(idOf(cache.lookup('t')), 4);
  });

  it('orders keys by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FFFF sorts below U+10000 in UTF-8 (EF BF BF < F0 90 80 80), above it in UTF-16.
    const astral = '\u{10000}';
    const c = new RangeCache([
      range(2, '', '\uffff'),
      range(3, '\uffff', astral),
      range(4, astral, null),
    ]);
    assert.deepEqual(
      c.ranges.map((r) => r.id),
      [2, 3, 4],
    );
    assert.equal(idOf(c.lookup('\uffff')), 3);
    assert.equal(idOf(c.lookup(astral)), 4);
    assert.equal(idOf(c.lookupBefore(astral)), 3);
    assert.equal(idOf(c.lookupBefore('\uffff')), 2);
  });

  it('fromBody parses a range map and refuses anything else', () => {
    const c = RangeCache.fromBody({
      ranges: [
        { id: 2, start: '', end: 'm', leaderHttp: 'a:1' },
        { id: 3, start: 'm', end: null },
      ],
    });
    assert.ok(c !== null);
    assert.deepEqual(c.ranges, [{ ...range(2, '', 'm'), leaderHttp: 'a:1' }, range(3, 'm', null)]);
    assert.equal(RangeCache.fromBody({ ranges: [{ id: 'x', start: '' }] }), null);
    assert.equal(RangeCache.fromBody({}), null);
  });
});
