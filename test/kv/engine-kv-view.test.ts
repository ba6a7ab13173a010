/**
 * EngineKvView against MemoryKvView (the reference): committed pairs in the
 * state engine overlaid with a batch's pending puts and deletes must read
 * and scan exactly like one ordered map.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { rangeId } from '../../src/core/ids.ts';
import { logIndex, term } from '../../src/core/ids.ts';
import { EngineKvView } from '../../src/kv/engine-kv-view.ts';
import { WriteSet } from '../../src/kv/write-set.ts';
import { MemoryStateEngine } from '../../src/storage/memory-state-engine.ts';
import { MemoryKvView } from '../../src/table/kv-view.ts';
import { EMPTY_CONF } from '../../src/raft/raft.ts';

const R = rangeId(7);
const PREFIX = Uint8Array.of(0x54, 0, 0, 0, 1);
const key = fc.uint8Array({ minLength: 0, maxLength: 4, max: 3 });
const value = fc.uint8Array({ minLength: 1, maxLength: 3 });
const hex = (pairs: Iterable<[Uint8Array, Uint8Array]>): string[] =>
  [...pairs].map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`);

test('EngineKvView = committed pairs overlaid with the batch (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(key, value), { maxLength: 30 }),
      fc.array(fc.tuple(key, fc.option(value)), { maxLength: 30 }),
      fc.array(fc.tuple(key, fc.option(key), fc.boolean(), fc.integer({ min: 0, max: 40 })), {
        minLength: 1,
        maxLength: 10,
      }),
      (committed, pendingOps, scans) => {
        const engine = new MemoryStateEngine();
        const model = new MemoryKvView();
        // Another prefix's keys, which the view must never show.
        const foreign: [Uint8Array, Uint8Array][] = [
          [Uint8Array.of(0x54, 0, 0, 0, 2), Uint8Array.of(9)],
        ];
        const puts = [
          ...committed.map(([k, v]): [Uint8Array, Uint8Array] => [
            Uint8Array.from([...PREFIX, ...k]),
            v,
          ]),
          ...foreign,
        ];
        engine.commit({
          range: R,
          puts,
          deletes: [],
          applied: { index: logIndex(1), term: term(1), conf: EMPTY_CONF },
        });
        for (const [k, v] of committed) model.put(k, v);
        const ws = new WriteSet();
        const view = new EngineKvView(engine, R, PREFIX, ws);
        for (const [k, v] of pendingOps) {
          if (v === null) {
            view.delete(k);
            model.delete(k);
          } else {
            view.put(k, v);
            model.put(k, v);
          }
        }
        for (const [k] of [...committed, ...pendingOps]) {
          assert.deepEqual(view.get(k), model.get(k));
        }
        for (const [start, end, reverse, limit] of scans) {
          assert.deepEqual(
            hex(view.scan(start, end, { reverse, limit })),
            hex(model.scan(start, end, { reverse, limit })),
          );
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('a read-only view refuses writes; scans longer than one engine page merge correctly', () => {
  const engine = new MemoryStateEngine();
  const puts: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i < 1000; i++)
    puts.push([Uint8Array.from([...PREFIX, i >> 8, i & 0xff]), Uint8Array.of(1)]);
  engine.commit({
    range: R,
    puts,
    deletes: [],
    applied: { index: logIndex(1), term: term(1), conf: EMPTY_CONF },
  });
  const ws = new WriteSet();
  const view = new EngineKvView(engine, R, PREFIX, ws);
  for (let i = 0; i < 1000; i += 3) view.delete(Uint8Array.of(i >> 8, i & 0xff));
  const forward = [...view.scan(new Uint8Array(0), null, { reverse: false, limit: 5000 })];
  const backward = [...view.scan(new Uint8Array(0), null, { reverse: true, limit: 5000 })];
  assert.equal(forward.length, 666);
  assert.deepEqual(hex(backward), hex(forward).reverse());
  const readOnly = new EngineKvView(engine, R, PREFIX, null);
  assert.throws(() => readOnly.put(Uint8Array.of(1), Uint8Array.of(1)));
  assert.equal(
    [...readOnly.scan(new Uint8Array(0), null, { reverse: false, limit: 5000 })].length,
    1000,
  );
});
