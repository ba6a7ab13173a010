import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logIndex, nodeId, rangeId, term } from '../../src/core/ids.ts';
import { AssertionError } from '../../src/core/assert.ts';
import { SeededRng } from '../../src/core/rng.ts';
import type { KvCommand } from '../../src/kv/command.ts';
import { decodeCommand, encodeCommand } from '../../src/kv/command.ts';
import type { SessionLimits } from '../../src/kv/session-table.ts';
import type { ApplyOutcome } from '../../src/kv/state-machine.ts';
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

// ---------------------------------------------------------------------------
// Session expiry by log time (Raft thesis §6.3) and the session cap.

/** Small limits, so that tests reach them. */
const LIMITS: SessionLimits = { idleMs: 1000, sessionsMax: 1000, expirationsPerCommandMax: 8 };

/** Every key and value of the range, as hex, in key order. */
function dump(engine: MemoryStateEngine): string[] {
  return engine
    .scan(R, new Uint8Array([0]), undefined, 1_000_000)
    .map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`);
}

/** The client ids that have a session record, in key order. */
function sessionClients(engine: MemoryStateEngine): string[] {
  return engine
    .scan(R, new Uint8Array([0x73]), new Uint8Array([0x74]), 1000)
    .map(([k]) => new TextDecoder().decode(k.subarray(1)));
}

test('a session idle for longer than the window expires by log time', () => {
  const engine = new MemoryStateEngine();
  const sm = new KvStateMachine(engine, R, LIMITS);
  sm.apply(cmd({ client: 1, op: 'append', value: 'a', at: 1000 }), at());
  sm.apply(cmd({ client: 2, op: 'append', value: 'b', at: 1500 }), at());
  // Client 1 was last used 1000 ms of log time ago: exactly the window, still kept.
  sm.apply(cmd({ client: 3, key: 'other', at: 2000 }), at());
  assert.deepEqual(sessionClients(engine), ['1', '2', '3']);
  // One millisecond later it has been idle for longer than the window.
  sm.apply(cmd({ client: 3, seq: 2, key: 'other', at: 2001 }), at());
  assert.deepEqual(sessionClients(engine), ['2', '3']);
  assert.deepEqual(sm.sessionStats(), {
    live: 2,
    expiredTotal: 1,
    evictedTotal: 0,
    logClockMs: 2001,
  });
  // The contract: a retry after the window is applied as a new command.
  assert.equal(
    sm.apply(cmd({ client: 1, op: 'append', value: 'a', at: 2002 }), at())?.kind,
    'applied',
  );
  assert.equal(sm.get('k'), 'aba');
});

test('within the window a retry is answered from the stored result', () => {
  const sm = new KvStateMachine(new MemoryStateEngine(), R, LIMITS);
  const swap = cmd({ client: 5, op: 'cas', expect: null, value: 'B', at: 100 });
  assert.deepEqual(sm.apply(swap, at()), { kind: 'applied', result: { ok: true } });
  // Other clients move the log clock on: 1000 ms after the swap, not more.
  sm.apply(cmd({ client: 6, key: 'x', at: 600 }), at());
  sm.apply(cmd({ client: 7, key: 'y', at: 1100 }), at());
  // The retry was proposed late (its own stamp is older than the log clock): still a duplicate.
  assert.deepEqual(sm.apply({ ...swap, at: 900 }, at()), {
    kind: 'duplicate',
    result: { ok: true },
  });
  assert.equal(sm.get('k'), 'B');
  assert.equal(sm.sessionStats().logClockMs, 1100, 'the log clock never goes back');
  // The duplicate counted as a use: the session lives 1000 ms past the log clock it saw.
  sm.apply(cmd({ client: 7, seq: 2, key: 'y', at: 2100 }), at());
  assert.equal(sm.apply({ ...swap, at: 2100 }, at())?.kind, 'duplicate');
  assert.equal(sm.sessionStats().expiredTotal, 1, 'client 6 expired');
});

test('a new session beyond the cap evicts the least recently used one', () => {
  const engine = new MemoryStateEngine();
  const sm = new KvStateMachine(engine, R, { ...LIMITS, sessionsMax: 3 });
  sm.apply(cmd({ client: 1, at: 10 }), at());
  sm.apply(cmd({ client: 2, at: 20 }), at());
  sm.apply(cmd({ client: 3, at: 30 }), at());
  // Client 1 is used again (a retry): client 2 becomes the least recently used.
  assert.equal(sm.apply(cmd({ client: 1, at: 40 }), at())?.kind, 'duplicate');
  sm.apply(cmd({ client: 4, at: 50 }), at());
  assert.deepEqual(sessionClients(engine), ['1', '3', '4']);
  // Ties on the log clock go by order of use.
  sm.apply(cmd({ client: 5, at: 50 }), at());
  sm.apply(cmd({ client: 6, at: 50 }), at());
  assert.deepEqual(sessionClients(engine), ['4', '5', '6']);
  assert.deepEqual(sm.sessionStats(), {
    live: 3,
    expiredTotal: 0,
    evictedTotal: 3,
    logClockMs: 50,
  });
  assert.equal(sm.apply(cmd({ client: 4, at: 60 }), at())?.kind, 'duplicate');
});

test('expiry does bounded work per command and drains a backlog', () => {
  const engine = new MemoryStateEngine();
  const sm = new KvStateMachine(engine, R, { ...LIMITS, expirationsPerCommandMax: 3 });
  for (let c = 1; c <= 10; c++) sm.apply(cmd({ client: c, at: 100 + c }), at());
  // A jump of the log clock makes all ten idle; one command expires three.
  sm.apply(cmd({ client: SESSIONLESS, at: 5000 }), at());
  assert.equal(sm.sessionStats().expiredTotal, 3);
  assert.deepEqual(sessionClients(engine).sort(), ['10', '4', '5', '6', '7', '8', '9'].sort());
  // The rest go with the next commands, oldest first, also within one batch.
  sm.applyBatch([
    { cmd: cmd({ client: 11, at: 5000 }), position: at() },
    { cmd: cmd({ client: 12, at: 5001 }), position: at() },
    { cmd: cmd({ client: 13, at: 5002 }), position: at() },
  ]);
  assert.deepEqual(sm.sessionStats(), {
    live: 3,
    expiredTotal: 10,
    evictedTotal: 0,
    logClockMs: 5002,
  });
  assert.deepEqual(sessionClients(engine), ['11', '12', '13']);
});

test('entries without a timestamp apply and leave the log clock still', () => {
  const engine = new MemoryStateEngine();
  const sm = new KvStateMachine(engine, R, LIMITS);
  // Entries written before commands carried `at`.
  const old = (client: number, seq: number): KvCommand =>
    decodeCommand(
      new TextEncoder().encode(
        JSON.stringify({ client, seq, op: 'append', key: 'k', value: 'x', expect: null }),
      ),
    );
  assert.equal(old(1, 1).at, undefined);
  for (let c = 1; c <= 5; c++) sm.apply(old(c, 1), at());
  assert.equal(sm.apply(old(1, 1), at())?.kind, 'duplicate');
  assert.deepEqual(sm.sessionStats(), { live: 5, expiredTotal: 0, evictedTotal: 0, logClockMs: 0 });
  // The first stamped entry starts the clock: sessions used before it count
  // as used then, not at log time 0, so none expires yet.
  sm.apply(cmd({ client: 9, key: 'z', at: 1_700_000_000_000 }), at());
  sm.apply(cmd({ client: 9, seq: 2, key: 'z', at: 1_700_000_000_500 }), at());
  assert.equal(sm.sessionStats().live, 6);
  // An unstamped entry uses its session at the log clock as it stands.
  assert.equal(sm.apply(old(2, 1), at())?.kind, 'duplicate');
  // A full window after the first stamp the untouched ones expire.
  sm.apply(cmd({ client: 9, seq: 3, key: 'z', at: 1_700_000_001_001 }), at());
  assert.deepEqual(sessionClients(engine), ['2', '9']);
  assert.equal(sm.sessionStats().expiredTotal, 4);
  assert.equal(sm.get('k'), 'xxxxx');
});

test('encodeCommand refuses a malformed timestamp; decode keeps a valid one', () => {
  assert.throws(() => encodeCommand(cmd({ at: -1 })), AssertionError);
  assert.throws(() => encodeCommand(cmd({ at: 1.5 })), AssertionError);
  assert.equal(decodeCommand(encodeCommand(cmd({ at: 42 }))).at, 42);
});

/** A deterministic stream of commands: few clients, retries, clock jumps, old and unstamped entries. */
function commandStream(seed: number, count: number): KvCommand[] {
  const rng = new SeededRng(seed);
  const seqs = new Map<number, number>();
  let clock = 1_000;
  const out: KvCommand[] = [];
  for (let i = 0; i < count; i++) {
    const client = rng.chance(0.1) ? SESSIONLESS : rng.int(1, 40);
    const last = seqs.get(client) ?? 0;
    // Mostly new commands; some retries of the last one, some stale ones.
    const seq = rng.chance(0.2) && last > 0 ? last - rng.int(0, 1) : last + rng.int(1, 3);
    seqs.set(client, Math.max(last, seq));
    clock += rng.chance(0.05) ? rng.int(1000, 3000) : rng.int(0, 50);
    // Proposers' clocks disagree: some stamps lag behind; some entries carry none.
    const stamp = rng.chance(0.1) ? undefined : Math.max(0, clock - rng.int(0, 400));
    out.push({
      client,
      seq,
      op: (['put', 'delete', 'cas', 'append'] as const)[rng.int(0, 3)]!,
      key: `k${rng.int(0, 5)}`,
      value: `v${i}`,
      expect: rng.chance(0.5) ? null : `v${rng.int(0, i)}`,
      ...(stamp === undefined ? {} : { at: stamp }),
    });
  }
  return out;
}

/** Applies `cmds` in batches whose sizes `rng` picks (1 = one entry at a time). */
function feed(
  sm: KvStateMachine,
  cmds: readonly KvCommand[],
  first: number,
  rng: SeededRng | null,
) {
  const outcomes: (ApplyOutcome | null)[] = [];
  let i = 0;
  while (i < cmds.length) {
    const n = rng === null ? 1 : rng.int(1, 30);
    const items = cmds
      .slice(i, i + n)
      .map((c, j) => ({ cmd: c, position: position(first + i + j) }));
    outcomes.push(...sm.applyBatch(items));
    i += n;
  }
  return outcomes;
}

const position = (index: number): SnapshotMeta => ({
  index: logIndex(index),
  term: term(1),
  conf: { voters: [nodeId(1)], votersOutgoing: [], learners: [] },
});

test('replicas fed the same log end in the same state, however batched, and through a snapshot', () => {
  const limits: SessionLimits = { idleMs: 1500, sessionsMax: 25, expirationsPerCommandMax: 2 };
  const cmds = commandStream(11, 3000);
  const head = cmds.slice(0, 2000);
  const tail = cmds.slice(2000);
  const a = new MemoryStateEngine();
  const b = new MemoryStateEngine();
  const smA = new KvStateMachine(a, R, limits);
  const smB = new KvStateMachine(b, R, limits);
  const outA = feed(smA, head, 2, null);
  const outB = feed(smB, head, 2, new SeededRng(5));
  assert.deepEqual(outB, outA);
  assert.deepEqual(dump(b), dump(a));
  const stats = smA.sessionStats();
  assert.deepEqual(smB.sessionStats(), stats);
  assert.ok(stats.expiredTotal > 0 && stats.evictedTotal > 0, JSON.stringify(stats));
  assert.ok(stats.live <= limits.sessionsMax);
  assert.equal(sessionClients(a).length, stats.live);
  // A third replica starts from A's snapshot and continues with the same log.
  const c = new MemoryStateEngine();
  const smC = new KvStateMachine(c, R, limits);
  smC.restore(smA.snapshot());
  assert.deepEqual(smC.sessionStats(), stats, 'the snapshot carries the log clock and counters');
  const tailA = feed(smA, tail, 2002, new SeededRng(6));
  const tailC = feed(smC, tail, 2002, new SeededRng(7));
  assert.deepEqual(tailC, tailA);
  assert.deepEqual(dump(c), dump(a));
  assert.deepEqual(smC.sessionStats(), smA.sessionStats());
});
