/** The meta range's records: initial split validation and key-to-range lookup. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TesseraError } from '../../src/core/errors.ts';
import { nodeId, rangeId } from '../../src/core/ids.ts';
import {
  RangeMap,
  decodeDescriptor,
  decodeMember,
  encodeMember,
  initialDescriptors,
  initialMetaPairs,
  memberKey,
  rangeKey,
  MEMBER_KEYS,
  RANGE_KEYS,
} from '../../src/server/meta.ts';

const invalid = (e: unknown): boolean => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT';

test('initial splits make contiguous data ranges from id 2', () => {
  assert.deepEqual(initialDescriptors([]), [{ id: 2, start: '', end: null, epoch: 1 }]);
  assert.deepEqual(
    initialDescriptors(['g', 'p']).map((r) => [r.id, r.start, r.end]),
    [
      [2, '', 'g'],
      [3, 'g', 'p'],
      [4, 'p', null],
    ],
  );
});

test('bad splits are refused with INVALID_ARGUMENT', () => {
  assert.throws(() => initialDescriptors(['b', 'a']), invalid);
  assert.throws(() => initialDescriptors(['a', 'a']), invalid);
  assert.throws(() => initialDescriptors(['']), invalid);
  assert.throws(() => initialDescriptors(['x'.repeat(1025)]), invalid);
  assert.throws(
    () => initialDescriptors(Array.from({ length: 65 }, (_, i) => `k${1000 + i}`)),
    invalid,
  );
});

test('member and range keys sort by id and stay inside their spans', () => {
  assert.ok(memberKey(2) < memberKey(10));
  assert.ok(rangeKey(9) < rangeKey(10));
  for (const k of [memberKey(1), memberKey(2 ** 31 - 1)]) {
    assert.ok(k >= MEMBER_KEYS.start && k < MEMBER_KEYS.end);
  }
  for (const k of [rangeKey(1), rangeKey(99999)])
    assert.ok(k >= RANGE_KEYS.start && k < RANGE_KEYS.end);
  const m = { id: nodeId(4), raft: '127.0.0.1:7004', http: '127.0.0.1:8004', grpcPort: 9004 };
  assert.deepEqual(decodeMember(encodeMember(m)), m);
  const pairs = initialMetaPairs([m], initialDescriptors(['m']));
  assert.deepEqual(
    pairs.map(([k]) => k),
    [memberKey(4), rangeKey(2), rangeKey(3)],
  );
  assert.deepEqual(decodeDescriptor(pairs[2]![1]), { id: 3, start: 'm', end: null, epoch: 1 });
});

test('RangeMap.lookup finds the range whose span holds the key (property)', () => {
  const key = fc.string({ maxLength: 6 });
  fc.assert(
    fc.property(
      fc.uniqueArray(
        key.filter((s) => s.length > 0),
        { maxLength: 8 },
      ),
      key,
      (raw, k) => {
        const splits = [...raw].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        const map = new RangeMap(initialDescriptors(splits));
        const r = map.lookup(k)!;
        const kb = Buffer.from(k);
        assert.ok(Buffer.compare(Buffer.from(r.start), kb) <= 0, 'start <= key');
        assert.ok(r.end === null || Buffer.compare(kb, Buffer.from(r.end)) < 0, 'key < end');
        assert.equal(map.byId(r.id), r);
      },
    ),
  );
});

test('RangeMap refuses descriptors that leave a gap or overlap', () => {
  const d = (id: number, start: string, end: string | null) => ({
    id: rangeId(id),
    start,
    end,
    epoch: 1,
  });
  assert.throws(() => new RangeMap([d(2, '', 'g'), d(3, 'h', null)]));
  assert.throws(() => new RangeMap([d(2, 'a', null)]));
  assert.throws(() => new RangeMap([d(2, '', 'g'), d(3, 'g', 'p')]));
  assert.equal(new RangeMap([]).lookup('x'), undefined);
});
