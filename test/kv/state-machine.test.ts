import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logIndex, nodeId, rangeId, term } from '../../src/core/ids.ts';
import type { KvCommand } from '../../src/kv/command.ts';
import { KvStateMachine, SESSIONLESS } from '../../src/kv/state-machine.ts';
import type { SnapshotMeta } from '../../src/raft/types.ts';
import { MemoryStateEngine } from '../../src/storage/memory-state-engine.ts';

const R = rangeId(7);
let index = 1;
const at = (): SnapshotMeta => ({
  index: logIndex(++index),
  term: term(1),
  conf: { voters: [nodeId(1)], votersOutgoing: [], learners: [] },
});
const cmd = (c: Partial<KvCommand>): KvCommand => ({
  client: 1,
  seq: 1,
  op: 'put',
  key: 'k',
  value: 'v',
  expect: null,
  ...c,
});

function sessionRecords(engine: MemoryStateEngine): number {
  // Session keys live under the 's' prefix of the range.
  return engine.scan(R, new Uint8Array([0x73]), new Uint8Array([0x74]), 1000).length;
}

test('a retried command answers from the session and is not applied twice', () => {
  const engine = new MemoryStateEngine();
  const sm = new KvStateMachine(engine, R);
  assert.deepEqual(sm.apply(cmd({ op: 'append', value: 'a', seq: 1 }), at()), {
    kind: 'applied',
    result: { ok: true },
  });
  assert.equal(sm.apply(cmd({ op: 'append', value: 'a', seq: 1 }), at())?.kind, 'duplicate');
  assert.equal(sm.get('k'), 'a');
  assert.equal(sm.apply(cmd({ op: 'append', value: 'b', seq: 3 }), at())?.kind, 'applied');
  // An older command of the session (given up by its client) is not applied.
  assert.equal(sm.apply(cmd({ op: 'append', value: 'x', seq: 2 }), at())?.kind, 'stale');
  assert.equal(sm.get('k'), 'ab');
  assert.equal(sm.applied()?.index, index);
});

test('a cas retried after it swapped reports the first result', () => {
  const sm = new KvStateMachine(new MemoryStateEngine(), R);
  const swap = cmd({ op: 'cas', expect: null, value: 'B', seq: 5 });
  assert.deepEqual(sm.apply(swap, at()), { kind: 'applied', result: { ok: true } });
  assert.deepEqual(sm.apply(swap, at()), { kind: 'duplicate', result: { ok: true } });
  assert.deepEqual(sm.apply(cmd({ op: 'cas', expect: null, value: 'C', seq: 6 }), at()), {
    kind: 'applied',
    result: { ok: false },
  });
});

test('sessionless commands are applied without growing the session table', () => {
  const engine = new MemoryStateEngine();
  const sm = new KvStateMachine(engine, R);
  for (let i = 1; i <= 50; i++) sm.apply(cmd({ client: SESSIONLESS, seq: i, key: `k${i}` }), at());
  assert.equal(sessionRecords(engine), 0);
  sm.apply(cmd({ client: 9, seq: 1 }), at());
  assert.equal(sessionRecords(engine), 1);
});

test('scans page by limit and bytes in key order, and a snapshot restores everything', () => {
  const engine = new MemoryStateEngine();
  const sm = new KvStateMachine(engine, R);
  for (const k of ['b', 'a', 'd', 'c', 'e'])
    sm.apply(cmd({ client: SESSIONLESS, key: k, value: k.repeat(10) }), at());
  assert.deepEqual(sm.scan('', null, 2, 1 << 20), {
    pairs: [
      ['a', 'a'.repeat(10)],
      ['b', 'b'.repeat(10)],
    ],
    next: 'c',
  });
  assert.deepEqual(
    sm.scan('c', 'e', 10, 1 << 20).pairs.map(([k]) => k),
    ['c', 'd'],
  );
  // A byte bound smaller than one pair still returns one pair per page.
  assert.deepEqual(sm.scan('a', null, 10, 1), { pairs: [['a', 'a'.repeat(10)]], next: 'b' });
  const copy = new KvStateMachine(new MemoryStateEngine(), R);
  copy.restore(sm.snapshot());
  assert.deepEqual(copy.scan('', null, 10, 1 << 20), sm.scan('', null, 10, 1 << 20));
  assert.equal(copy.applied()?.index, sm.applied()?.index);
});

test('a batch applies in order, sees its own effects, dedupes retries, and commits once', () => {
  const engine = new MemoryStateEngine();
  let commits = 0;
  const commit = engine.commit.bind(engine);
  engine.commit = (b) => {
    commits++;
    commit(b);
  };
  const sm = new KvStateMachine(engine, R);
  const outcomes = sm.applyBatch([
    { cmd: cmd({ client: 4, seq: 1, op: 'put', value: 'A' }), position: at() },
    { cmd: null, position: at() },
    { cmd: cmd({ client: 5, seq: 1, op: 'cas', expect: 'A', value: 'B' }), position: at() },
    // The same command proposed twice (a retry) lands twice in one batch.
    { cmd: cmd({ client: 6, seq: 1, op: 'append', key: 'log', value: 'x' }), position: at() },
    { cmd: cmd({ client: 6, seq: 1, op: 'append', key: 'log', value: 'x' }), position: at() },
    { cmd: cmd({ client: 5, seq: 2, op: 'delete' }), position: at() },
    { cmd: cmd({ client: 7, seq: 1, op: 'cas', expect: null, value: 'C' }), position: at() },
  ]);
  assert.deepEqual(
    outcomes.map((o) => o?.kind ?? null),
    ['applied', null, 'applied', 'applied', 'duplicate', 'applied', 'applied'],
  );
  assert.deepEqual(outcomes[2], { kind: 'applied', result: { ok: true } }, 'cas saw the put');
  assert.deepEqual(outcomes[6], { kind: 'applied', result: { ok: true } }, 'cas saw the delete');
  assert.equal(commits, 1);
  assert.equal(sm.get('k'), 'C');
  assert.equal(sm.get('log'), 'x');
  assert.equal(sm.applied()?.index, index);
  // After the batch, a retry of client 6's command is still answered from its session.
  assert.equal(
    sm.apply(cmd({ client: 6, seq: 1, op: 'append', key: 'log', value: 'x' }), at())?.kind,
    'duplicate',
  );
});
