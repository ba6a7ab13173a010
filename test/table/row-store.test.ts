// The table row store (src/table/row-store.ts) and what it stands on: the
// MVCC key layout, the cell codec and the in-memory KvView. Unit tests of
// every operation and rule, then property tests against a naive reference
// model (row-model.ts), with canaries the property must catch, and a
// property that GC never changes what reads return.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { TesseraError } from '../../src/core/errors.ts';
import { decodeRecordValue, encodeRecordValue } from '../../src/table/cell-codec.ts';
import type { ColumnCondition, RowCondition } from '../../src/table/condition.ts';
import type { KvView } from '../../src/table/kv-view.ts';
import { compareBytes, MemoryKvView } from '../../src/table/kv-view.ts';
import {
  columnKey,
  decodeDataKey,
  escapeBytes,
  lockKey,
  rowMarkerKey,
  rowPrefix,
  rowSpanEnd,
  writeKey,
} from '../../src/table/mvcc-layout.ts';
import {
  CELLS_PER_WRITE_MAX,
  COLUMN_NAME_BYTES_MAX,
  RANGE_PAGE_RECORDS_MAX,
  ROW_KEY_BYTES_MAX,
} from '../../src/table/row-limits.ts';
import type {
  CellInput,
  GetRangeOptions,
  GetRowOptions,
  Row,
  TableOptions,
  UpdateOp,
} from '../../src/table/row-store.ts';
import {
  deleteRow,
  gcRange,
  getRange,
  getRow,
  putRow,
  updateRow,
} from '../../src/table/row-store.ts';
import type { AttributeValue } from '../../src/table/types.ts';
import { RowModel } from './row-model.ts';

const b = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);
const hex = (x: Uint8Array): string => Buffer.from(x).toString('hex');
const T0 = 1_700_000_000_000;
const OPTS: TableOptions = { maxVersions: 3, ttlSeconds: null, maxVersionOffsetSeconds: 86_400 };
const R1 = b(0x72, 0x31);
const ALL: GetRowOptions = { maxVersions: 100 };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof TesseraError) return e.code;
    throw e;
  }
  return 'OK';
}

function dump(view: MemoryKvView): string[] {
  return view.entries().map(([k, v]) => `${hex(k)}=${hex(v)}`);
}

/** The row's cells as `column@version=value` strings. */
function cellsOf(row: Row | null): string[] {
  return (row?.cells ?? []).map((c) => `${c.column}@${c.version - T0}=${String(c.value)}`);
}

describe('mvcc layout', () => {
  it('matches the documented byte example', () => {
    assert.equal(
      hex(columnKey(b(0x61, 0x00), 'x', 5)),
      '446100ff0001' + '02' + '780001' + 'fffffffffffffffa',
    );
    assert.equal(hex(rowMarkerKey(b(0x61, 0x00), 5)), '446100ff0001' + '01' + 'fffffffffffffffa');
    assert.equal(hex(lockKey(b(0x61))), '4c610001');
    assert.equal(hex(writeKey(b(0x61), 0)), '57610001' + 'ffffffffffffffff');
  });

  it('escaping preserves byte order and keeps rows apart', () => {
    const bytes = fc.uint8Array({ maxLength: 6 }).map((a) => a.map((x) => [0, 1, 0xff, 7][x % 4]!));
    fc.assert(
      fc.property(bytes, bytes, fc.string({ maxLength: 3 }), fc.nat(1e6), (x, y, col, v) => {
        assert.equal(
          Math.sign(compareBytes(escapeBytes(x), escapeBytes(y))),
          Math.sign(compareBytes(x, y)),
        );
        // Every record of row x lies in [rowPrefix(x), rowSpanEnd(x)), and a record of y does not unless x = y.
        for (const key of [columnKey(y, col, v), rowMarkerKey(y, v)]) {
          const inside =
            compareBytes(key, rowPrefix(x)) >= 0 && compareBytes(key, rowSpanEnd(x)) < 0;
          assert.equal(inside, compareBytes(x, y) === 0);
        }
      }),
      { numRuns: 500, seed: 11 },
    );
  });

  it('sorts versions newest first and decodes what it encodes', () => {
    assert.ok(compareBytes(columnKey(R1, 'a', 10), columnKey(R1, 'a', 9)) < 0);
    assert.ok(compareBytes(rowMarkerKey(R1, 0), columnKey(R1, '', 99)) < 0, 'markers first');
    assert.deepEqual(decodeDataKey(columnKey(b(0, 1), 'é\u0000', 42)), {
      kind: 'column',
      rowKey: b(0, 1),
      column: 'é\u0000',
      version: 42,
    });
    assert.deepEqual(decodeDataKey(rowMarkerKey(b(), Number.MAX_SAFE_INTEGER)), {
      kind: 'row-marker',
      rowKey: b(),
      version: Number.MAX_SAFE_INTEGER,
    });
    assert.equal(
      code(() => decodeDataKey(b(0x44, 0x61))),
      'CORRUPTION',
    );
    assert.equal(
      code(() => decodeDataKey(b(0x44, 0x00, 0x01, 0x09))),
      'CORRUPTION',
    );
  });
});

describe('cell codec', () => {
  it('keeps the exact type of every value', () => {
    const values: AttributeValue[] = ['', 'héllo', 0n, -(2n ** 63n), 2n ** 63n - 1n, 1, 0.5, -0];
    values.push(true, false, b(), b(0, 255));
    for (const v of values) {
      assert.deepEqual(decodeRecordValue(encodeRecordValue({ kind: 'cell', value: v })), {
        kind: 'cell',
        value: v,
      });
    }
    const cellOf = (v: AttributeValue): unknown =>
      (decodeRecordValue(encodeRecordValue({ kind: 'cell', value: v })) as { value: unknown })
        .value;
    assert.equal(typeof cellOf(1n), 'bigint');
    assert.equal(typeof cellOf(1), 'number');
    for (const kind of ['column-delete', 'version-tombstone', 'row-delete'] as const) {
      assert.deepEqual(decodeRecordValue(encodeRecordValue({ kind })), { kind });
    }
    assert.equal(
      code(() => decodeRecordValue(b(9))),
      'CORRUPTION',
    );
    assert.equal(
      code(() => decodeRecordValue(b(1, 2, 1))),
      'CORRUPTION',
    );
  });
});

describe('MemoryKvView', () => {
  it('scans forward, backward, bounded and limited', () => {
    const v = new MemoryKvView();
    for (const k of [b(1), b(1, 0), b(2), b(0xff), b()]) v.put(k, k);
    const keys = (xs: Iterable<[Uint8Array, Uint8Array]>): string[] => [...xs].map(([k]) => hex(k));
    assert.deepEqual(keys(v.scan(b(), null, { reverse: false, limit: 10 })), [
      '',
      '01',
      '0100',
      '02',
      'ff',
    ]);
    assert.deepEqual(keys(v.scan(b(1), b(0xff), { reverse: true, limit: 10 })), [
      '02',
      '0100',
      '01',
    ]);
    assert.deepEqual(keys(v.scan(b(1), b(0xff), { reverse: true, limit: 1 })), ['02']);
    assert.deepEqual(keys(v.scan(b(3), b(1), { reverse: false, limit: 5 })), []);
    v.delete(b(2));
    assert.equal(v.get(b(2)), undefined);
    assert.deepEqual(v.get(b(1, 0)), b(1, 0));
    assert.equal(v.size, 4);
  });
});

describe('putRow and getRow', () => {
  it('writes cells at now by default and reads the newest version', () => {
    const v = new MemoryKvView();
    putRow(
      v,
      R1,
      [
        { column: 'a', value: 1n },
        { column: 'b', value: 'x' },
      ],
      OPTS,
      T0,
    );
    assert.deepEqual(cellsOf(getRow(v, R1, {}, OPTS, T0)), ['a@0=1', 'b@0=x']);
    assert.equal(getRow(v, b(9), {}, OPTS, T0), null);
  });

  it('replaces the row, even cells with newer client versions', () => {
    const v = new MemoryKvView();
    putRow(
      v,
      R1,
      [
        { column: 'a', value: 1n },
        { column: 'b', value: 2n, version: T0 + 500 },
      ],
      OPTS,
      T0,
    );
    putRow(v, R1, [{ column: 'c', value: 3n, version: T0 - 100 }], OPTS, T0 + 10);
    assert.deepEqual(cellsOf(getRow(v, R1, ALL, OPTS, T0 + 10)), ['c@-100=3']);
  });

  it('refuses versions outside now ± maxVersionOffset and duplicates, changing nothing', () => {
    const v = new MemoryKvView();
    const opts = { ...OPTS, maxVersionOffsetSeconds: 1 };
    putRow(v, R1, [{ column: 'a', value: 1n }], opts, T0);
    const before = dump(v);
    assert.equal(
      code(() => putRow(v, R1, [{ column: 'a', value: 2n, version: T0 + 1001 }], opts, T0)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => putRow(v, R1, [{ column: 'a', value: 2n, version: T0 - 1001 }], opts, T0)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() =>
        putRow(
          v,
          R1,
          [
            { column: 'a', value: 2n },
            { column: 'a', value: 3n, version: T0 },
          ],
          opts,
          T0,
        ),
      ),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => putRow(v, R1, [{ column: 'a', value: 2n, version: T0 + 1000 }], opts, T0)),
      'OK',
    );
    assert.notDeepEqual(dump(v), before);
    try {
      putRow(v, R1, [{ column: 'a', value: 2n, version: T0 + 5000 }], opts, T0);
      assert.fail('expected an error');
    } catch (e) {
      assert.ok(e instanceof TesseraError);
      assert.match(e.message, /outside now ± maxVersionOffset/);
    }
  });

  it('enforces its named limits with coded errors', () => {
    const v = new MemoryKvView();
    assert.equal(
      code(() => putRow(v, new Uint8Array(ROW_KEY_BYTES_MAX + 1), [], OPTS, T0)),
      'KEY_TOO_LARGE',
    );
    assert.equal(
      code(() =>
        putRow(v, R1, [{ column: 'x'.repeat(COLUMN_NAME_BYTES_MAX + 1), value: 1n }], OPTS, T0),
      ),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => putRow(v, R1, [{ column: '', value: 1n }], OPTS, T0)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() =>
        putRow(v, R1, [{ column: 'a', value: new Uint8Array(3 * 1024 * 1024) }], OPTS, T0),
      ),
      'VALUE_TOO_LARGE',
    );
    const many: CellInput[] = Array.from({ length: CELLS_PER_WRITE_MAX + 1 }, (_, i) => ({
      column: `c${i}`,
      value: 1n,
    }));
    assert.equal(
      code(() => putRow(v, R1, many, OPTS, T0)),
      'REQUEST_TOO_LARGE',
    );
    assert.equal(
      code(() => putRow(v, R1, [{ column: 'a', value: 2n ** 63n }], OPTS, T0)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => putRow(v, R1, [{ column: 'a', value: NaN }], OPTS, T0)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => putRow(v, R1, [], { ...OPTS, maxVersions: 0 }, T0)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => putRow(v, R1, [], { ...OPTS, ttlSeconds: 0 }, T0)),
      'INVALID_ARGUMENT',
    );
    assert.equal(v.size, 0);
  });

  it('shows at most maxVersions versions, newest first, and hides expired ones', () => {
    const v = new MemoryKvView();
    const opts: TableOptions = { maxVersions: 2, ttlSeconds: 10, maxVersionOffsetSeconds: 86_400 };
    for (const d of [0, 1000, 2000])
      updateRow(v, R1, [{ type: 'put', column: 'a', value: BigInt(d) }], opts, T0 + d);
    assert.deepEqual(cellsOf(getRow(v, R1, ALL, opts, T0 + 2000)), ['a@2000=2000', 'a@1000=1000']);
    // Versions older than now - ttl are invisible at once: 1000 expires after 11000.
    assert.deepEqual(cellsOf(getRow(v, R1, ALL, opts, T0 + 11_000)), [
      'a@2000=2000',
      'a@1000=1000',
    ]);
    assert.deepEqual(cellsOf(getRow(v, R1, ALL, opts, T0 + 11_001)), ['a@2000=2000']);
    assert.equal(getRow(v, R1, ALL, opts, T0 + 12_001), null);
  });

  it('narrows reads by columns, maxVersions, timeRange and at', () => {
    const v = new MemoryKvView();
    const cells: CellInput[] = [10, 20, 30].flatMap((d) => [
      { column: 'a', value: `a${d}`, version: T0 + d },
      { column: 'b', value: `b${d}`, version: T0 + d },
    ]);
    putRow(v, R1, cells, OPTS, T0 + 30);
    assert.deepEqual(cellsOf(getRow(v, R1, { columns: ['b'] }, OPTS, T0 + 30)), ['b@30=b30']);
    assert.deepEqual(cellsOf(getRow(v, R1, { columns: ['a'], maxVersions: 2 }, OPTS, T0 + 30)), [
      'a@30=a30',
      'a@20=a20',
    ]);
    assert.deepEqual(cellsOf(getRow(v, R1, { columns: ['a'], at: T0 + 25 }, OPTS, T0 + 30)), [
      'a@20=a20',
    ]);
    const tr = { start: T0 + 10, end: T0 + 30 };
    assert.deepEqual(
      cellsOf(getRow(v, R1, { columns: ['a'], timeRange: tr, maxVersions: 5 }, OPTS, T0 + 30)),
      ['a@20=a20', 'a@10=a10'],
    );
    assert.equal(getRow(v, R1, { columns: ['zz'] }, OPTS, T0 + 30), null);
    assert.equal(getRow(v, R1, { at: T0 + 5 }, OPTS, T0 + 30), null);
    assert.equal(
      code(() => getRow(v, R1, { timeRange: { start: 5, end: 5 } }, OPTS, T0)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => getRow(v, R1, { maxVersions: 0 }, OPTS, T0)),
      'INVALID_ARGUMENT',
    );
  });
});

describe('updateRow', () => {
  it('puts, deletes a column, deletes one version, keeping other columns', () => {
    const v = new MemoryKvView();
    putRow(
      v,
      R1,
      [
        { column: 'a', value: 1n },
        { column: 'b', value: 'x' },
        { column: 'c', value: true },
      ],
      OPTS,
      T0,
    );
    updateRow(v, R1, [{ type: 'put', column: 'a', value: 2n }], OPTS, T0 + 1);
    assert.deepEqual(cellsOf(getRow(v, R1, ALL, OPTS, T0 + 1)), [
      'a@1=2',
      'a@0=1',
      'b@0=x',
      'c@0=true',
    ]);
    updateRow(
      v,
      R1,
      [
        { type: 'delete-version', column: 'a', version: T0 + 1 },
        { type: 'delete-column', column: 'b' },
      ],
      OPTS,
      T0 + 2,
    );
    assert.deepEqual(cellsOf(getRow(v, R1, ALL, OPTS, T0 + 2)), ['a@0=1', 'c@0=true']);
    // Deleting a version that has no cell changes nothing.
    const before = dump(v);
    updateRow(v, R1, [{ type: 'delete-version', column: 'c', version: T0 + 77 }], OPTS, T0 + 3);
    assert.deepEqual(dump(v), before);
  });

  it('increments integers, counting a missing column as 0, and returns the new values', () => {
    const v = new MemoryKvView();
    const got = updateRow(v, R1, [{ type: 'increment', column: 'n', delta: 5n }], OPTS, T0);
    assert.deepEqual(got, [{ column: 'n', value: 5n, version: T0 }]);
    const again = updateRow(
      v,
      R1,
      [
        { type: 'increment', column: 'n', delta: -7n },
        { type: 'put', column: 's', value: 's' },
      ],
      OPTS,
      T0 + 1,
    );
    assert.deepEqual(again, [{ column: 'n', value: -2n, version: T0 + 1 }]);
    assert.equal(
      code(() => updateRow(v, R1, [{ type: 'increment', column: 's', delta: 1n }], OPTS, T0 + 2)),
      'INVALID_ARGUMENT',
    );
    updateRow(v, R1, [{ type: 'put', column: 'm', value: 2n ** 63n - 2n }], OPTS, T0 + 2);
    const before = dump(v);
    assert.equal(
      code(() =>
        updateRow(
          v,
          R1,
          [
            { type: 'put', column: 'z', value: 1n },
            { type: 'increment', column: 'm', delta: 2n },
          ],
          OPTS,
          T0 + 3,
        ),
      ),
      'INVALID_ARGUMENT',
    );
    assert.deepEqual(dump(v), before, 'a failed update changes nothing');
    assert.equal(
      code(() => updateRow(v, R1, [{ type: 'increment', column: 'm', delta: 1n }], OPTS, T0 + 3)),
      'OK',
    );
  });

  it('refuses a column named twice and a version at or below a delete', () => {
    const v = new MemoryKvView();
    const twice: UpdateOp[] = [
      { type: 'put', column: 'a', value: 1n },
      { type: 'delete-column', column: 'a' },
    ];
    assert.equal(
      code(() => updateRow(v, R1, twice, OPTS, T0)),
      'INVALID_ARGUMENT',
    );
    deleteRow(v, R1, OPTS, T0 + 100);
    assert.equal(
      code(() =>
        updateRow(
          v,
          R1,
          [{ type: 'put', column: 'a', value: 1n, version: T0 + 100 }],
          OPTS,
          T0 + 100,
        ),
      ),
      'INVALID_ARGUMENT',
    );
    // Without a version, a write in the millisecond of the delete lands just above it.
    updateRow(v, R1, [{ type: 'put', column: 'a', value: 1n }], OPTS, T0 + 100);
    assert.deepEqual(cellsOf(getRow(v, R1, {}, OPTS, T0 + 100)), ['a@101=1']);
  });
});

describe('deleteRow and conditions', () => {
  it('hides every version of the row', () => {
    const v = new MemoryKvView();
    putRow(
      v,
      R1,
      [
        { column: 'a', value: 1n },
        { column: 'b', value: 1n, version: T0 + 9000 },
      ],
      OPTS,
      T0,
    );
    deleteRow(v, R1, OPTS, T0 + 1);
    assert.equal(getRow(v, R1, ALL, OPTS, T0 + 1), null);
    assert.equal(
      getRow(v, R1, { ...ALL, at: T0 }, OPTS, T0 + 1),
      null,
      'deletes are not versioned snapshots',
    );
    updateRow(v, R1, [{ type: 'put', column: 'a', value: 2n }], OPTS, T0 + 2);
    assert.deepEqual(cellsOf(getRow(v, R1, ALL, OPTS, T0 + 2)), ['a@2=2']);
  });

  it('checks row existence and column conditions before writing anything', () => {
    const v = new MemoryKvView();
    const exist: RowCondition = { rowExistence: 'EXPECT_EXIST' };
    const notExist: RowCondition = { rowExistence: 'EXPECT_NOT_EXIST' };
    assert.equal(
      code(() => putRow(v, R1, [{ column: 'a', value: 1n }], OPTS, T0, exist)),
      'CONDITION_FAILED',
    );
    assert.equal(v.size, 0);
    putRow(v, R1, [{ column: 'a', value: 1n }], OPTS, T0, notExist);
    const before = dump(v);
    assert.equal(
      code(() => putRow(v, R1, [{ column: 'a', value: 2n }], OPTS, T0 + 1, notExist)),
      'CONDITION_FAILED',
    );
    assert.equal(
      code(() => deleteRow(v, R1, OPTS, T0 + 1, notExist)),
      'CONDITION_FAILED',
    );
    const gt5: RowCondition = {
      rowExistence: 'IGNORE',
      columnCondition: { kind: 'relation', column: 'a', op: '>', value: 5n },
    };
    assert.equal(
      code(() =>
        updateRow(v, R1, [{ type: 'increment', column: 'a', delta: 1n }], OPTS, T0 + 1, gt5),
      ),
      'CONDITION_FAILED',
    );
    assert.deepEqual(dump(v), before);
    const le5: RowCondition = {
      ...gt5,
      columnCondition: { kind: 'relation', column: 'a', op: '<=', value: 5n },
    };
    assert.deepEqual(
      updateRow(v, R1, [{ type: 'increment', column: 'a', delta: 1n }], OPTS, T0 + 1, le5),
      [{ column: 'a', value: 2n, version: T0 + 1 }],
    );
    deleteRow(v, R1, OPTS, T0 + 2, exist);
    assert.equal(getRow(v, R1, {}, OPTS, T0 + 2), null);
  });
});

describe('getRange', () => {
  const keys = [b(), b(0), b(0, 0), b(1), b(1, 0), b(2)];
  function fill(): MemoryKvView {
    const v = new MemoryKvView();
    keys.forEach((k, i) =>
      putRow(
        v,
        k,
        [
          { column: 'n', value: BigInt(i) },
          { column: 'pad', value: 'x'.repeat(10) },
        ],
        OPTS,
        T0,
      ),
    );
    return v;
  }
  const opts = (o: Partial<GetRangeOptions> = {}): GetRangeOptions => ({
    direction: 'forward',
    limit: 100,
    bytesMax: 1 << 20,
    ...o,
  });
  const names = (rows: readonly Row[]): string[] => rows.map((r) => hex(r.rowKey));

  it('reads forward [start, end) and backward (end, start] in row key order', () => {
    const v = fill();
    assert.deepEqual(names(getRange(v, b(), null, opts(), OPTS, T0).rows), [
      '',
      '00',
      '0000',
      '01',
      '0100',
      '02',
    ]);
    assert.deepEqual(names(getRange(v, b(0), b(1, 0), opts(), OPTS, T0).rows), [
      '00',
      '0000',
      '01',
    ]);
    assert.deepEqual(
      names(getRange(v, b(1, 0), b(0), opts({ direction: 'backward' }), OPTS, T0).rows),
      ['0100', '01', '0000'],
    );
    assert.deepEqual(
      names(getRange(v, b(9), null, opts({ direction: 'backward' }), OPTS, T0).rows),
      ['02', '0100', '01', '0000', '00', ''],
    );
    assert.deepEqual(getRange(v, b(2), b(1), opts(), OPTS, T0), { rows: [], next: null });
  });

  it('startExclusive and span narrow the interval exactly (against a reference filter)', () => {
    const v = fill();
    const bounds = [null, b(), b(0), b(0, 0), b(0, 5), b(1), b(1, 0), b(2), b(3)];
    const below = (x: Uint8Array, y: Uint8Array): boolean => compareBytes(x, y) < 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...bounds.slice(1)),
        fc.constantFrom(...bounds),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom(...bounds),
        fc.constantFrom(...bounds),
        (start, end, backward, startExclusive, spanStart, spanEnd) => {
          const span = { start: spanStart, end: spanEnd };
          const page = getRange(
            v,
            start!,
            end,
            opts({ direction: backward ? 'backward' : 'forward', startExclusive, span }),
            OPTS,
            T0,
          );
          const inSpan = (k: Uint8Array): boolean =>
            (spanStart === null || !below(k, spanStart)) && (spanEnd === null || below(k, spanEnd));
          const expected = keys
            .filter((k) => {
              const c = compareBytes(k, start!);
              const fromStart = backward
                ? c < 0 || (c === 0 && !startExclusive)
                : c > 0 || (c === 0 && !startExclusive);
              const toEnd = end === null || (backward ? below(end, k) : below(k, end));
              return fromStart && toEnd && inSpan(k);
            })
            .sort(compareBytes);
          if (backward) expected.reverse();
          assert.deepEqual(names(page.rows), expected.map(hex));
          assert.equal(page.next, null);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('pages by limit and bytes and continues from next', () => {
    const v = fill();
    const p1 = getRange(v, b(), null, opts({ limit: 4 }), OPTS, T0);
    assert.deepEqual(names(p1.rows), ['', '00', '0000', '01']);
    assert.deepEqual(p1.next, b(1, 0));
    const p2 = getRange(v, p1.next!, null, opts({ limit: 4 }), OPTS, T0);
    assert.deepEqual([names(p2.rows), p2.next], [['0100', '02'], null]);
    const small = getRange(v, b(2), null, opts({ bytesMax: 1, direction: 'backward' }), OPTS, T0);
    assert.deepEqual(
      [names(small.rows), small.next],
      [['02'], b(1, 0)],
      'at least one row per page',
    );
  });

  it('filters rows and projects columns; skipped rows do not end the scan', () => {
    const v = fill();
    deleteRow(v, b(0), OPTS, T0 + 1);
    const odd: ColumnCondition = {
      kind: 'or',
      terms: [1n, 3n, 5n].map(
        (n) => ({ kind: 'relation', column: 'n', op: '=', value: n }) as const,
      ),
    };
    const page = getRange(v, b(), null, opts({ filter: odd, columns: ['n'] }), OPTS, T0 + 1);
    assert.deepEqual(names(page.rows), ['01', '02']);
    assert.deepEqual(cellsOf(page.rows[0]!), ['n@0=3']);
  });

  it('ends a page at the record budget even when every row is filtered out', () => {
    const v = new MemoryKvView();
    const marker = encodeRecordValue({ kind: 'row-delete' });
    const rows = RANGE_PAGE_RECORDS_MAX + 10;
    for (let i = 0; i < rows; i++)
      v.put(rowMarkerKey(b(i >> 16, (i >> 8) & 255, i & 255), T0), marker);
    const page = getRange(v, b(), null, opts(), OPTS, T0);
    assert.deepEqual(page.rows, []);
    const at = RANGE_PAGE_RECORDS_MAX;
    assert.deepEqual(page.next, b(at >> 16, (at >> 8) & 255, at & 255));
  });
});

describe('gcRange', () => {
  it('removes excess, expired and deleted versions and old markers; reads stay the same', () => {
    const v = new MemoryKvView();
    const opts: TableOptions = { maxVersions: 2, ttlSeconds: 60, maxVersionOffsetSeconds: 1 };
    for (let i = 0; i < 4; i++)
      updateRow(v, R1, [{ type: 'put', column: 'a', value: BigInt(i) }], opts, T0 + i);
    putRow(v, b(2), [{ column: 'x', value: 1n }], opts, T0);
    deleteRow(v, b(2), opts, T0 + 5);
    updateRow(v, b(3), [{ type: 'put', column: 'y', value: 1n }], opts, T0);
    const read = (now: number): unknown =>
      [R1, b(2), b(3)].map((k) => cellsOf(getRow(v, k, ALL, opts, now)));
    const before = read(T0 + 5);
    const r = gcRange(v, b(), null, opts, T0 + 5, 1000);
    // a@0 and a@1 (excess), x@0 (deleted), row 2's older marker from its putRow (superseded).
    assert.deepEqual({ removed: r.removed, next: r.next }, { removed: 4, next: null });
    assert.deepEqual(read(T0 + 5), before);
    // Later: y expires, and the delete marker of row 2 is older than now - maxVersionOffset.
    const later = T0 + 61_000;
    const r2 = gcRange(v, b(), null, opts, later, 1000);
    assert.equal(r2.removed, 4); // a@2, a@3, the row 2 marker, y@0
    assert.equal(v.size, 0);
  });

  it('stops at a row boundary after the budget and resumes from next', () => {
    const v = new MemoryKvView();
    const opts: TableOptions = { ...OPTS, maxVersions: 1 };
    for (let k = 0; k < 5; k++) {
      for (let i = 0; i < 3; i++)
        updateRow(v, b(k), [{ type: 'put', column: 'a', value: BigInt(i) }], opts, T0 + i);
    }
    let start: Uint8Array | null = b();
    let calls = 0;
    let removed = 0;
    while (start !== null) {
      const r = gcRange(v, start, null, opts, T0 + 3, 4);
      assert.ok(r.examined <= 4 - 1 + 3, 'over budget by at most one row');
      removed += r.removed;
      start = r.next;
      calls += 1;
    }
    assert.equal(removed, 10);
    assert.equal(calls, 3);
    assert.equal(v.size, 5);
  });
});

// ---------------------------------------------------------------------------
// Property tests against the reference model.
// ---------------------------------------------------------------------------

const ROW_KEYS = [b(), b(0), b(0, 0), b(0, 1), b(1), b(0xff)];
const COLUMNS = ['a', 'b', 'c'];

const valueArb: fc.Arbitrary<AttributeValue> = fc.oneof(
  fc.string({ maxLength: 3 }),
  { weight: 3, arbitrary: fc.bigInt({ min: -5n, max: 5n }) },
  fc.constantFrom(2n ** 63n - 1n, -(2n ** 63n)),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.uint8Array({ maxLength: 3 }),
);
/** Mostly two rows, so that operations meet each other's data; sometimes any row. */
const rowKeyArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(b(0), b(0, 0)) },
  { weight: 1, arbitrary: fc.constantFrom(...ROW_KEYS) },
);
const columnArb = fc.constantFrom(...COLUMNS);
/** A version relative to now (ms), or none; some fall outside the version offset. */
const versionDeltaArb: fc.Arbitrary<number | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
  { weight: 1, arbitrary: fc.integer({ min: -4000, max: 4000 }) },
);

const relationArb: fc.Arbitrary<ColumnCondition> = fc.record({
  kind: fc.constant('relation' as const),
  column: columnArb,
  op: fc.constantFrom('=', '!=', '>', '>=', '<', '<=' as const),
  value: valueArb,
  passIfMissing: fc.boolean(),
});
const conditionArb: fc.Arbitrary<RowCondition | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        rowExistence: fc.constantFrom('IGNORE', 'EXPECT_EXIST', 'EXPECT_NOT_EXIST' as const),
        columnCondition: relationArb,
      },
      { requiredKeys: ['rowExistence'] },
    ),
  },
);

const updateOpArb: fc.Arbitrary<(now: number) => UpdateOp> = fc.oneof(
  fc.tuple(columnArb, valueArb, versionDeltaArb).map(
    ([column, value, d]) =>
      (now: number): UpdateOp =>
        d === undefined
          ? { type: 'put', column, value }
          : { type: 'put', column, value, version: now + d },
  ),
  columnArb.map((column) => (): UpdateOp => ({ type: 'delete-column', column })),
  fc
    .tuple(columnArb, fc.integer({ min: -3000, max: 0 }))
    .map(([column, d]) => (now: number): UpdateOp => ({
      type: 'delete-version',
      column,
      version: now + d,
    })),
  fc
    .tuple(columnArb, fc.bigInt({ min: -3n, max: 3n }))
    .map(([column, delta]) => (): UpdateOp => ({ type: 'increment', column, delta })),
);

type Step =
  | {
      op: 'put';
      row: Uint8Array;
      cells: Array<[string, AttributeValue, number | undefined]>;
      cond: RowCondition | undefined;
    }
  | {
      op: 'update';
      row: Uint8Array;
      ops: Array<(now: number) => UpdateOp>;
      cond: RowCondition | undefined;
    }
  | { op: 'delete'; row: Uint8Array; cond: RowCondition | undefined }
  | { op: 'gc'; budget: number }
  | { op: 'get'; row: Uint8Array; options: (now: number) => GetRowOptions }
  | { op: 'range'; start: Uint8Array; end: Uint8Array | null; options: GetRangeOptions };

const readOptionsArb: fc.Arbitrary<(now: number) => GetRowOptions> = fc
  .record(
    {
      columns: fc.subarray(COLUMNS, { minLength: 1 }),
      maxVersions: fc.integer({ min: 1, max: 4 }),
      atDelta: fc.integer({ min: -3000, max: 1000 }),
    },
    { requiredKeys: [] },
  )
  .map(
    ({ atDelta, ...rest }) =>
      (now: number): GetRowOptions =>
        atDelta === undefined ? rest : { ...rest, at: now + atDelta },
  );

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('put' as const),
      row: rowKeyArb,
      cells: fc.array(fc.tuple(columnArb, valueArb, versionDeltaArb), {
        minLength: 1,
        maxLength: 3,
      }),
      cond: conditionArb,
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('update' as const),
      row: rowKeyArb,
      ops: fc.array(updateOpArb, { minLength: 1, maxLength: 3 }),
      cond: conditionArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('delete' as const),
      row: rowKeyArb,
      cond: conditionArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('gc' as const),
      budget: fc.integer({ min: 1, max: 30 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('get' as const),
      row: rowKeyArb,
      options: readOptionsArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('range' as const),
      start: rowKeyArb,
      end: fc.option(rowKeyArb, { nil: null }),
      options: fc.record({
        direction: fc.constantFrom('forward', 'backward' as const),
        limit: fc.integer({ min: 1, max: 4 }),
        bytesMax: fc.constantFrom(1, 40, 1 << 20),
        maxVersions: fc.integer({ min: 1, max: 4 }),
        filter: fc.option(relationArb, { nil: undefined }),
      }),
    }),
  },
);

const scenarioArb = fc.record({
  opts: fc.record({
    maxVersions: fc.integer({ min: 1, max: 3 }),
    ttlSeconds: fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 20 })),
    maxVersionOffsetSeconds: fc.integer({ min: 1, max: 3 }),
  }),
  steps: fc.array(fc.tuple(stepArb, fc.constantFrom(0, 1, 7, 50, 400, 1500, 4000)), {
    minLength: 10,
    maxLength: 40,
  }),
});

/** How a store under test is driven; canaries swap in wrong variants. */
interface Store {
  readonly view: KvView;
  readonly opts: TableOptions;
  read(opts: TableOptions): TableOptions;
  gc(opts: TableOptions): TableOptions;
}

function outcome<T>(fn: () => T): { ok: T } | { error: string } {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof TesseraError) return { error: e.code };
    throw e;
  }
}

/** All pages of a range read, following next. */
function wholeRange(
  store: Store,
  start: Uint8Array,
  end: Uint8Array | null,
  o: GetRangeOptions,
  now: number,
): Row[] {
  const rows: Row[] = [];
  let from: Uint8Array | null = start;
  for (let pages = 0; from !== null; pages++) {
    assert.ok(pages < 100, 'getRange pages terminate');
    const page = getRange(store.view, from, end, o, store.read(store.opts), now);
    assert.ok(page.rows.length <= o.limit);
    rows.push(...page.rows);
    from = page.next;
  }
  return rows;
}

/** Runs one scenario against the store and the model; throws on the first disagreement. */
function runAgainstModel(
  scenario: { opts: TableOptions; steps: Array<[Step, number]> },
  makeStore: (opts: TableOptions) => Store,
): void {
  const { opts, steps } = scenario;
  const store = makeStore(opts);
  const model = new RowModel(opts);
  let now = T0 + 20_000;
  let gcFrom: Uint8Array | null = b();
  for (const [step, advanceMs] of steps) {
    now += advanceMs;
    switch (step.op) {
      case 'put': {
        const cells: CellInput[] = step.cells.map(([column, value, d]) =>
          d === undefined ? { column, value } : { column, value, version: now + d },
        );
        assert.deepEqual(
          outcome(() => putRow(store.view, step.row, cells, store.opts, now, step.cond)),
          outcome(() => model.putRow(step.row, cells, now, step.cond)),
        );
        break;
      }
      case 'update': {
        const ops = step.ops.map((f) => f(now));
        assert.deepEqual(
          outcome(() => updateRow(store.view, step.row, ops, store.opts, now, step.cond)),
          outcome(() => model.updateRow(step.row, ops, now, step.cond)),
        );
        break;
      }
      case 'delete':
        assert.deepEqual(
          outcome(() => deleteRow(store.view, step.row, store.opts, now, step.cond)),
          outcome(() => model.deleteRow(step.row, now, step.cond)),
        );
        break;
      case 'gc': {
        const r = gcRange(store.view, gcFrom ?? b(), null, store.gc(store.opts), now, step.budget);
        gcFrom = r.next;
        break;
      }
      case 'get':
        assert.deepEqual(
          getRow(store.view, step.row, step.options(now), store.read(store.opts), now),
          model.getRow(step.row, step.options(now), now),
        );
        break;
      case 'range':
        assert.deepEqual(
          wholeRange(store, step.start, step.end, step.options, now),
          model.getRange(step.start, step.end, step.options, now),
        );
        break;
    }
  }
  for (const row of ROW_KEYS) {
    assert.deepEqual(
      getRow(store.view, row, { maxVersions: 10 }, store.read(store.opts), now),
      model.getRow(row, { maxVersions: 10 }, now),
    );
  }
}

/**
 * Two stores take the same writes; only one is garbage collected (fully, at
 * every gc step, with the options `gcOpts` makes). Throws if their reads or
 * write outcomes ever differ.
 */
function gcKeepsReads(
  { opts, steps }: { opts: TableOptions; steps: Array<[Step, number]> },
  gcOpts: (o: TableOptions) => TableOptions,
): void {
  const plain = new MemoryKvView();
  const collected = new MemoryKvView();
  let now = T0 + 20_000;
  const readAll = (view: KvView): unknown => [
    ROW_KEYS.map((k) => getRow(view, k, { maxVersions: 10 }, opts, now)),
    getRange(
      view,
      b(0xff),
      null,
      { direction: 'backward', limit: 100, bytesMax: 1 << 20, maxVersions: 10 },
      opts,
      now,
    ),
  ];
  for (const [step, advanceMs] of steps) {
    now += advanceMs;
    const both = (f: (view: KvView) => unknown): void =>
      assert.deepEqual(
        outcome(() => f(collected)),
        outcome(() => f(plain)),
      );
    if (step.op === 'put') {
      const cells = step.cells.map(([column, value, d]) =>
        d === undefined ? { column, value } : { column, value, version: now + d },
      );
      both((view) => putRow(view, step.row, cells, opts, now, step.cond));
    } else if (step.op === 'update') {
      const ops = step.ops.map((f) => f(now));
      both((view) => updateRow(view, step.row, ops, opts, now, step.cond));
    } else if (step.op === 'delete') {
      both((view) => deleteRow(view, step.row, opts, now, step.cond));
    } else if (step.op === 'gc') {
      const before = readAll(collected);
      let from: Uint8Array | null = b();
      while (from !== null)
        from = gcRange(collected, from, null, gcOpts(opts), now, step.budget).next;
      assert.deepEqual(readAll(collected), before);
    }
    assert.deepEqual(readAll(collected), readAll(plain));
  }
}

const honest = (opts: TableOptions): Store => ({
  view: new MemoryKvView(),
  opts,
  read: (o) => o,
  gc: (o) => o,
});

describe('row store against the reference model', () => {
  it('reads what the model reads, and fails as the model fails', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => runAgainstModel(s, honest)),
      { numRuns: 300, seed: 20261122 },
    );
  });

  it('catches a store whose reads ignore maxVersions (canary)', () => {
    const broken = (opts: TableOptions): Store => ({
      ...honest(opts),
      read: (o) => ({ ...o, maxVersions: 1000 }),
    });
    const r = fc.check(
      fc.property(scenarioArb, (s) => runAgainstModel(s, broken)),
      { numRuns: 300, seed: 20261122 },
    );
    assert.equal(r.failed, true, 'the property must catch reads that ignore maxVersions');
  });

  it('catches a GC that removes a visible version (canary)', () => {
    const broken = (opts: TableOptions): Store => ({
      ...honest(opts),
      gc: (o) => ({ ...o, maxVersions: Math.max(1, o.maxVersions - 1) }),
    });
    const r = fc.check(
      fc.property(scenarioArb, (s) => runAgainstModel(s, broken)),
      { numRuns: 300, seed: 20261122 },
    );
    assert.equal(r.failed, true, 'the property must catch GC removing a visible version');
  });

  it('GC never changes what reads or later writes return', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => gcKeepsReads(s, (o) => o)),
      { numRuns: 300, seed: 7 },
    );
  });

  it('catches a GC that removes a visible version when comparing reads (canary)', () => {
    const r = fc.check(
      fc.property(scenarioArb, (s) =>
        gcKeepsReads(s, (o) => ({ ...o, maxVersions: Math.max(1, o.maxVersions - 1) })),
      ),
      { numRuns: 300, seed: 7 },
    );
    assert.equal(r.failed, true, 'the GC property must catch GC removing a visible version');
  });
});
