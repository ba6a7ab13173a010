// checkLinearizable: hand-written histories with known verdicts, unknown
// outcomes, per-key partitioning, property tests against a reference register
// model, and a large random linearizable history.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import type { KvOperation } from '../../src/check/history.ts';
import { checkLinearizable } from '../../src/check/linearizability.ts';
import { SeededRng } from '../../src/core/rng.ts';

// ---- Builders. `ret` null with ok null = timed out.

function put(
  client: number,
  key: string,
  value: string,
  call: number,
  ret: number | null,
  ok: boolean | null = true,
): KvOperation {
  return { client, op: 'put', key, value, expect: null, call, return: ret, ok, output: null };
}

function del(
  client: number,
  key: string,
  call: number,
  ret: number | null,
  ok: boolean | null = true,
): KvOperation {
  return {
    client,
    op: 'delete',
    key,
    value: null,
    expect: null,
    call,
    return: ret,
    ok,
    output: null,
  };
}

function get(
  client: number,
  key: string,
  output: string | null,
  call: number,
  ret: number | null,
  ok: boolean | null = true,
): KvOperation {
  return { client, op: 'get', key, value: null, expect: null, call, return: ret, ok, output };
}

function cas(
  client: number,
  key: string,
  expect: string | null,
  value: string,
  call: number,
  ret: number | null,
  ok: boolean | null = true,
): KvOperation {
  return { client, op: 'cas', key, value, expect, call, return: ret, ok, output: null };
}

function verdict(history: readonly KvOperation[]): string {
  return checkLinearizable(history).verdict;
}

describe('checkLinearizable: linearizable histories', () => {
  it('accepts the empty history', () => {
    const r = checkLinearizable([]);
    assert.equal(r.verdict, 'ok');
    assert.deepEqual(r.badKeys, []);
  });

  it('accepts a sequential history', () => {
    const h = [
      get(1, 'x', null, 0, 1),
      put(1, 'x', 'a', 2, 3),
      get(2, 'x', 'a', 4, 5),
      put(2, 'x', 'b', 6, 7),
      get(1, 'x', 'b', 8, 9),
      del(1, 'x', 10, 11),
      get(2, 'x', null, 12, 13),
      put(3, 'x', 'a', 14, 15),
      get(3, 'x', 'a', 16, 17),
    ];
    assert.equal(verdict(h), 'ok');
  });

  it('accepts reads that overlap a write seeing either the old or the new value', () => {
    const h = [
      put(1, 'x', 'a', 0, 1),
      put(1, 'x', 'b', 10, 30),
      get(2, 'x', 'a', 11, 12),
      get(3, 'x', 'b', 13, 14),
      get(2, 'x', 'b', 15, 16),
      get(4, 'x', 'b', 31, 32),
    ];
    assert.equal(verdict(h), 'ok');
  });

  it('accepts concurrent writes observed in an order other than the call order', () => {
    // b is called after a, but both overlap, so a may have been linearized last.
    const h = [
      put(1, 'x', 'a', 0, 10),
      put(2, 'x', 'b', 1, 10),
      get(3, 'x', 'b', 2, 3),
      get(3, 'x', 'a', 4, 5),
      get(4, 'x', 'a', 11, 12),
    ];
    assert.equal(verdict(h), 'ok');
  });

  it('accepts a cas chain whose swaps are listed out of order and overlap', () => {
    const h = [
      cas(3, 'x', '2', '3', 0, 20),
      cas(2, 'x', '1', '2', 0, 20),
      cas(1, 'x', null, '1', 0, 20),
      cas(4, 'x', '0', 'never', 1, 2, false), // compare failed: ignored
      get(5, 'x', '2', 3, 4),
      get(5, 'x', '3', 21, 22),
      cas(5, 'x', '3', '4', 23, 24),
      get(6, 'x', '4', 25, 26),
    ];
    assert.equal(verdict(h), 'ok');
  });

  it('treats an operation returning exactly when another is called as concurrent with it', () => {
    assert.equal(verdict([put(1, 'x', 'a', 0, 5), get(2, 'x', null, 5, 6)]), 'ok');
  });

  it('ignores failed operations, whatever they claim', () => {
    const h = [
      put(1, 'x', 'a', 0, 1),
      put(2, 'x', 'zzz', 2, 3, false),
      del(2, 'x', 2, 3, false),
      cas(3, 'x', 'a', 'q', 4, 5, false), // could have swapped, but reported failed
      get(4, 'x', 'nonsense', 6, 7, false),
      get(4, 'x', 'a', 8, 9),
    ];
    assert.equal(verdict(h), 'ok');
  });
});

describe('checkLinearizable: violations', () => {
  it('rejects a stale read after a completed write', () => {
    const h = [put(1, 'x', 'a', 0, 1), get(2, 'x', null, 2, 3)];
    const r = checkLinearizable(h);
    assert.equal(r.verdict, 'violation');
    assert.deepEqual(r.badKeys, ['x']);
    assert.match(r.message, /key "x"/);
    assert.match(r.message, /get -> absent on "x" \[2, 3\]/);
  });

  it('rejects two sequential reads that see the writes in an impossible order', () => {
    const h = [
      put(1, 'x', 'a', 0, 1),
      put(1, 'x', 'b', 2, 20),
      get(2, 'x', 'b', 3, 4),
      get(2, 'x', 'a', 5, 6), // once b was visible, a cannot come back
    ];
    assert.equal(verdict(h), 'violation');
    // Same reads from two different clients, still ordered in real time.
    const h2 = [
      put(1, 'x', 'a', 0, 10),
      put(2, 'x', 'b', 0, 10),
      get(3, 'x', 'a', 1, 2),
      get(4, 'x', 'b', 3, 4),
      get(3, 'x', 'a', 5, 6),
    ];
    assert.equal(verdict(h2), 'violation');
    // Without the last read it is fine.
    assert.equal(verdict(h2.slice(0, 4)), 'ok');
  });

  it('rejects a read of a value never written', () => {
    const r = checkLinearizable([put(1, 'x', 'a', 0, 1), get(2, 'x', 'b', 2, 3)]);
    assert.equal(r.verdict, 'violation');
    assert.match(r.message, /"b"/);
  });

  it('rejects a cas that succeeded although the only possible value did not match', () => {
    const h = [put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), cas(2, 'x', 'a', 'c', 4, 5)];
    assert.equal(verdict(h), 'violation');
    // Expecting absence when the key is definitely present.
    assert.equal(verdict([put(1, 'x', 'a', 0, 1), cas(2, 'x', null, 'c', 2, 3)]), 'violation');
    // Overlapping the second put, the cas could have come first: fine.
    const h2 = [put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 6), cas(2, 'x', 'a', 'c', 4, 5)];
    assert.equal(verdict(h2), 'ok');
  });

  it('rejects two successful cas with the same expectation and no write in between', () => {
    const h = [put(1, 'x', '0', 0, 1), cas(2, 'x', '0', 'a', 2, 10), cas(3, 'x', '0', 'b', 2, 10)];
    assert.equal(verdict(h), 'violation');
  });

  it('rejects a lost write: a later read sees the value the completed put replaced', () => {
    const h = [
      put(1, 'x', 'old', 0, 1),
      get(2, 'x', 'old', 2, 3),
      put(3, 'x', 'new', 4, 5),
      get(2, 'x', 'old', 6, 7),
    ];
    const r = checkLinearizable(h);
    assert.equal(r.verdict, 'violation');
    assert.match(r.message, /leaving the value "new"/);
    assert.match(r.message, /get -> "old" on "x" \[6, 7\]/);
  });

  it('rejects a read of a deleted value', () => {
    const h = [put(1, 'x', 'a', 0, 1), del(1, 'x', 2, 3), get(2, 'x', 'a', 4, 5)];
    assert.equal(verdict(h), 'violation');
  });
});

describe('checkLinearizable: unknown outcomes', () => {
  it('accepts a timed-out put whose value is read later', () => {
    const h = [
      put(1, 'x', 'a', 0, null, null),
      get(2, 'x', null, 5, 6),
      get(2, 'x', 'a', 100, 101),
    ];
    assert.equal(verdict(h), 'ok');
  });

  it('accepts a timed-out put whose value is never read', () => {
    const h = [
      put(1, 'x', 'a', 0, null, null),
      get(2, 'x', null, 5, 6),
      get(2, 'x', null, 100, 101),
    ];
    assert.equal(verdict(h), 'ok');
  });

  it('ignores the return time of an operation whose outcome is unknown', () => {
    // The put "returned" at 1 with an unknown outcome: it may still take effect after 2.
    const h = [put(1, 'x', 'a', 0, 1, null), get(2, 'x', null, 2, 3), get(2, 'x', 'a', 4, 5)];
    assert.equal(verdict(h), 'ok');
  });

  it('lets a timed-out put take effect at most once', () => {
    const h = [
      put(1, 'x', 'a', 0, null, null),
      get(2, 'x', 'a', 5, 6),
      put(3, 'x', 'b', 7, 8),
      get(2, 'x', 'b', 9, 10),
      get(2, 'x', 'a', 11, 12), // would need the put to take effect a second time
    ];
    assert.equal(verdict(h), 'violation');
    assert.equal(verdict(h.slice(0, 4)), 'ok');
  });

  it('does not let a timed-out put take effect before its call', () => {
    const h = [put(3, 'x', 'b', 0, 1), put(1, 'x', 'a', 2, null, null), get(2, 'x', 'b', 3, 4)];
    assert.equal(verdict(h), 'ok');
    const h2 = [
      put(3, 'x', 'b', 0, 1),
      get(2, 'x', 'a', 2, 3), // 'a' is only written by a put called later
      put(1, 'x', 'a', 4, null, null),
    ];
    assert.equal(verdict(h2), 'violation');
  });

  it('rejects a read of a value only written by a failed put', () => {
    const h = [put(1, 'x', 'a', 0, 1, false), get(2, 'x', 'a', 2, 3)];
    assert.equal(verdict(h), 'violation');
  });

  it('handles cas with unknown outcome either way', () => {
    const base = [put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', 2, null, null)];
    assert.equal(verdict([...base, get(3, 'x', 'b', 5, 6)]), 'ok');
    assert.equal(verdict([...base, get(3, 'x', 'a', 5, 6)]), 'ok');
    assert.equal(verdict([...base, get(3, 'x', 'b', 5, 6), get(3, 'x', 'a', 7, 8)]), 'violation');
    // An unknown cas cannot swap when its expectation is never met.
    const h = [
      put(1, 'x', 'a', 0, 1),
      cas(2, 'x', 'z', 'b', 2, null, null),
      get(3, 'x', 'b', 5, 6),
    ];
    assert.equal(verdict(h), 'violation');
  });

  it('ignores a get whose outcome is unknown', () => {
    const h = [
      put(1, 'x', 'a', 0, 1),
      get(2, 'x', 'nonsense', 2, null, null),
      get(3, 'x', 'a', 3, 4),
    ];
    assert.equal(verdict(h), 'ok');
  });

  it('lets a timed-out delete make the key absent later', () => {
    const h = [put(1, 'x', 'a', 0, 1), del(2, 'x', 2, null, null), get(3, 'x', 'a', 3, 4)];
    assert.equal(verdict([...h, get(3, 'x', null, 5, 6)]), 'ok');
    assert.equal(verdict([...h, get(3, 'x', null, 5, 6), get(3, 'x', 'a', 7, 8)]), 'violation');
  });
});

describe('checkLinearizable: partitioning, budget, input checks', () => {
  it('reports only the keys whose sub-history is bad', () => {
    const h = [
      put(1, 'x', 'a', 0, 1),
      put(1, 'y', 'a', 0, 1),
      get(2, 'x', 'a', 2, 3),
      get(2, 'y', null, 2, 3), // stale on y
      put(1, 'z', 'c', 4, 5),
      get(2, 'z', 'c', 6, 7),
    ];
    const r = checkLinearizable(h);
    assert.equal(r.verdict, 'violation');
    assert.deepEqual(r.badKeys, ['y']);
    assert.match(r.message, /^key "y"/);
  });

  it('does not mix values across keys', () => {
    // 'a' was written to x, never to y.
    const h = [put(1, 'x', 'a', 0, 1), get(2, 'y', 'a', 2, 3), get(2, 'x', 'a', 2, 3)];
    assert.deepEqual(checkLinearizable(h).badKeys, ['y']);
  });

  it('lists every bad key in order of first appearance', () => {
    const h = [
      get(1, 'q', null, 0, 1),
      put(1, 'b', 'v', 0, 1),
      put(1, 'a', 'v', 0, 1),
      get(2, 'a', 'w', 2, 3),
      get(2, 'b', null, 2, 3),
    ];
    const r = checkLinearizable(h);
    assert.equal(r.verdict, 'violation');
    assert.deepEqual(r.badKeys, ['b', 'a']);
    assert.match(r.message, /^key "b"/);
    assert.match(r.message, /1 more bad key/);
  });

  it('reports unknown when the step budget runs out', () => {
    const h = [put(1, 'x', 'a', 0, 10), put(2, 'x', 'b', 0, 10), get(3, 'x', 'b', 11, 12)];
    assert.equal(checkLinearizable(h, { maxSteps: 10_000 }).verdict, 'ok');
    const r = checkLinearizable(h, { maxSteps: 2 });
    assert.equal(r.verdict, 'unknown');
    assert.deepEqual(r.badKeys, ['x']);
    assert.equal(r.steps, 2);
    assert.match(r.message, /undecided/);
  });

  it('prefers a definite violation over an undecided key', () => {
    const h = [
      put(1, 'x', 'a', 0, 10),
      get(3, 'x', 'a', 11, 12),
      get(1, 'y', 'never', 0, 1), // detected without search
    ];
    const r = checkLinearizable(h, { maxSteps: 1 });
    assert.equal(r.verdict, 'violation');
    assert.deepEqual(r.badKeys, ['y', 'x']);
  });

  it('rejects malformed operations', () => {
    assert.throws(() => checkLinearizable([put(1, 'x', 'a', 5, 4)]), /returns before its call/);
    assert.throws(() => checkLinearizable([put(1, 'x', 'a', NaN, 4)]), /non-finite call/);
    assert.throws(() => checkLinearizable([put(1, 'x', 'a', 0, NaN)]), /returns before its call/);
  });
});

// ---- Reference model and generated histories.

type Kind = 'put' | 'get' | 'delete' | 'cas';
type Outcome = 'ok' | 'failed' | 'unknownApplied' | 'unknownNotApplied';

interface Command {
  kind: Kind;
  key: number;
  value: number;
  /** cas: expect the current value (and swap) rather than a different one (and fail). */
  casMatches: boolean;
  outcome: Outcome;
  client: number;
  widenCall: number;
  widenReturn: number;
}

const commandArb = (withUnknown: boolean): fc.Arbitrary<Command> =>
  fc.record({
    kind: fc.constantFrom<Kind>('put', 'get', 'get', 'delete', 'cas', 'cas'),
    key: fc.integer({ min: 0, max: 2 }),
    value: fc.integer({ min: 0, max: 3 }),
    casMatches: fc.boolean(),
    outcome: withUnknown
      ? fc.constantFrom<Outcome>(
          'ok',
          'ok',
          'ok',
          'ok',
          'failed',
          'unknownApplied',
          'unknownNotApplied',
        )
      : fc.constantFrom<Outcome>('ok', 'ok', 'ok', 'failed'),
    client: fc.integer({ min: 1, max: 6 }),
    widenCall: fc.integer({ min: 0, max: 350 }),
    widenReturn: fc.integer({ min: 0, max: 350 }),
  });

/**
 * Executes the commands one at a time against a reference register per key;
 * command i takes effect at t = 100 i + 50 and is observed over
 * [100 i + 10, 100 i + 90], or over an interval widened by the command's
 * widenCall / widenReturn (still containing its instant) when `widen`.
 */
function execute(commands: readonly Command[], widen: boolean): KvOperation[] {
  const state = new Map<string, string | null>();
  return commands.map((c, i) => {
    const key = `k${c.key}`;
    const current = state.get(key) ?? null;
    const at = 100 * i + 50;
    const call = widen ? at - 40 - c.widenCall : at - 40;
    const ret = widen ? at + 40 + c.widenReturn : at + 40;
    const value = `v${c.value}`;
    let op: KvOperation;
    let applies = c.outcome === 'ok' || c.outcome === 'unknownApplied';
    switch (c.kind) {
      case 'put':
        op = put(c.client, key, value, call, ret);
        break;
      case 'delete':
        op = del(c.client, key, call, ret);
        break;
      case 'get':
        op = get(c.client, key, applies ? current : value, call, ret);
        break;
      case 'cas': {
        const expect = c.casMatches ? current : current === value ? null : value;
        applies &&= c.casMatches;
        op = cas(c.client, key, expect, value, call, ret);
        break;
      }
    }
    if (c.outcome === 'failed' || (c.kind === 'cas' && !c.casMatches && c.outcome === 'ok')) {
      op.ok = false;
    } else if (c.outcome === 'unknownApplied' || c.outcome === 'unknownNotApplied') {
      op.ok = null;
      op.return = null;
      if (c.kind === 'get') op.output = value; // an unknown read may claim anything
    }
    if (applies && c.kind !== 'get') state.set(key, c.kind === 'delete' ? null : value);
    return op;
  });
}

/** Indices of the successful gets of a history. */
function okGets(history: readonly KvOperation[]): number[] {
  return history.flatMap((o, i) => (o.op === 'get' && o.ok === true ? [i] : []));
}

describe('checkLinearizable: properties', () => {
  const historyArb = fc.tuple(
    fc.array(commandArb(true), { minLength: 1, maxLength: 60 }),
    fc.boolean(),
  );

  it('accepts every execution of the reference model, with or without widened intervals', () => {
    fc.assert(
      fc.property(historyArb, ([commands, widen]) => {
        const h = execute(commands, widen);
        const r = checkLinearizable(h);
        assert.equal(r.verdict, 'ok', r.message);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects an execution in which one read returns a value never written', () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), ([commands, widen], pick) => {
        const h = execute(commands, widen);
        const gets = okGets(h);
        let victim: KvOperation;
        if (gets.length > 0) {
          victim = h[gets[pick % gets.length]!]!;
        } else {
          const t = 100 * h.length + 10;
          victim = get(9, 'k0', null, t, t + 80);
          h.push(victim);
        }
        victim.output = 'never-written';
        const r = checkLinearizable(h);
        assert.equal(r.verdict, 'violation');
        assert.deepEqual(r.badKeys, [victim.key]);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a sequential execution in which one read returns any other value', () => {
    // Without overlap and without unknown outcomes the only linearization is
    // the real-time order, so any other read value is wrong, old values included.
    fc.assert(
      fc.property(
        fc.array(commandArb(false), { minLength: 1, maxLength: 60 }),
        fc.nat(),
        fc.constantFrom(null, 'v0', 'v1', 'v2', 'v3'),
        (commands, pick, other) => {
          const h = execute(commands, false);
          const gets = okGets(h).filter((i) => h[i]!.output !== other);
          fc.pre(gets.length > 0);
          const victim = h[gets[pick % gets.length]!]!;
          victim.output = other;
          const r = checkLinearizable(h);
          assert.equal(r.verdict, 'violation');
          assert.deepEqual(r.badKeys, [victim.key]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---- A brute-force oracle, straight from the definition, for tiny histories.

/**
 * Tries every order of the operations (all keys together, so it also checks
 * partitioning by key): an operation may go next once every operation that
 * returned strictly before its call has gone; successful operations must all
 * go, unknown-outcome writes may or may not; failed operations and
 * unknown-outcome gets are ignored.
 */
function bruteForceLinearizable(history: readonly KvOperation[]): boolean {
  const ops = history.filter((o) => o.ok === true || (o.ok === null && o.op !== 'get'));
  const returnOf = (o: KvOperation): number => (o.ok === true ? (o.return ?? Infinity) : Infinity);
  const failed = new Set<string>();
  const search = (done: number, state: ReadonlyMap<string, string>): boolean => {
    if (ops.every((o, i) => o.ok !== true || done & (1 << i))) return true;
    const memo = `${done}:${JSON.stringify([...state].sort())}`;
    if (failed.has(memo)) return false;
    for (let i = 0; i < ops.length; i++) {
      if (done & (1 << i)) continue;
      const o = ops[i]!;
      const blocked = ops.some((p, j) => !(done & (1 << j)) && j !== i && returnOf(p) < o.call);
      if (blocked) continue;
      const current = state.get(o.key) ?? null;
      const next = new Map(state);
      if (o.op === 'get') {
        if (current !== o.output) continue;
      } else if (o.op === 'cas') {
        if (current !== o.expect) continue;
        next.set(o.key, o.value!);
      } else if (o.op === 'put' && o.value !== null) {
        next.set(o.key, o.value);
      } else {
        next.delete(o.key);
      }
      if (search(done | (1 << i), next)) return true;
    }
    failed.add(memo);
    return false;
  };
  return search(0, new Map());
}

describe('checkLinearizable: against a brute-force oracle', () => {
  const value = fc.constantFrom(null, 'a', 'b');
  const opArb: fc.Arbitrary<KvOperation> = fc
    .record({
      client: fc.integer({ min: 1, max: 4 }),
      op: fc.constantFrom<Kind>('put', 'get', 'get', 'delete', 'cas'),
      key: fc.constantFrom('x', 'y'),
      value: fc.constantFrom('a', 'b'),
      expect: value,
      output: value,
      call: fc.integer({ min: 0, max: 12 }),
      length: fc.integer({ min: 0, max: 6 }),
      ok: fc.constantFrom<boolean | null>(true, true, true, false, null),
    })
    .map(({ length, ...o }) => ({
      ...o,
      value: o.op === 'put' || o.op === 'cas' ? o.value : null,
      expect: o.op === 'cas' ? o.expect : null,
      output: o.op === 'get' ? o.output : null,
      return: o.ok === null ? null : o.call + length,
    }));

  it('agrees on small random histories, linearizable or not', () => {
    const seen = { ok: 0, violation: 0 };
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 9 }), (h) => {
        const expected = bruteForceLinearizable(h) ? 'ok' : 'violation';
        seen[expected]++;
        assert.equal(checkLinearizable(h).verdict, expected);
      }),
      { numRuns: 2000 },
    );
    // Both verdicts were exercised.
    assert.ok(seen.ok > 100 && seen.violation > 100, JSON.stringify(seen));
  });
});

// ---- Large histories from a hidden linearization.

/**
 * `count` operations by `clients` concurrent clients on `keys` keys: each
 * client issues one operation at a time over a random interval, each
 * operation takes effect at a random instant inside its interval, and
 * outputs are computed by applying the operations in the order of those
 * instants. Every written value is unique. With `unknownRate`, that fraction
 * of writes times out, taking effect or not at random. Also returns the final
 * value of each key in the hidden linearization.
 */
function hiddenLinearization(
  seed: number,
  count: number,
  keys: number,
  clients: number,
  unknownRate = 0,
): { history: KvOperation[]; final: Map<string, string | null> } {
  const rng = new SeededRng(seed);
  const clock = new Array<number>(clients).fill(0);
  const planned: { op: KvOperation; at: number; applies: boolean; matches: boolean }[] = [];
  for (let i = 0; i < count; i++) {
    const client = rng.int(0, clients - 1);
    const call = clock[client]! + rng.int(0, 5);
    const duration = rng.int(1, 40);
    const at = call + rng.next() * duration;
    const key = `key${rng.int(0, keys - 1)}`;
    const roll = rng.next();
    const kind: Kind = roll < 0.35 ? 'put' : roll < 0.75 ? 'get' : roll < 0.8 ? 'delete' : 'cas';
    const op: KvOperation = {
      client,
      op: kind,
      key,
      value: kind === 'put' || kind === 'cas' ? `w${i}` : null,
      expect: null,
      call,
      return: call + duration,
      ok: true,
      output: null,
    };
    let applies = true;
    if (kind !== 'get' && rng.chance(unknownRate)) {
      op.ok = null;
      op.return = null;
      applies = rng.chance(0.5);
    }
    planned.push({ op, at, applies, matches: rng.chance(0.7) });
    clock[client] = call + duration;
  }
  const state = new Map<string, string | null>();
  for (const p of [...planned].sort((a, b) => a.at - b.at)) {
    const o = p.op;
    const current = state.get(o.key) ?? null;
    if (o.op === 'get') o.output = current;
    else if (o.op === 'cas') {
      o.expect = p.matches ? current : `missing-${o.value}`;
      if (!p.matches && o.ok === true) o.ok = false;
      if (p.matches && p.applies) state.set(o.key, o.value);
    } else if (p.applies) state.set(o.key, o.op === 'put' ? o.value : null);
  }
  return { history: planned.map((p) => p.op), final: state };
}

describe('checkLinearizable: large histories', () => {
  it('accepts 2000 operations by 8 clients on 10 keys', () => {
    for (const seed of [1, 2, 3]) {
      const { history: h } = hiddenLinearization(seed, 2000, 10, 8);
      const r = checkLinearizable(h);
      assert.equal(r.verdict, 'ok', r.message);
      assert.ok(r.steps >= 2000);
    }
  });

  it('accepts 2000 operations with some timed-out writes', () => {
    for (const seed of [4, 5, 6]) {
      const { history: h } = hiddenLinearization(seed, 2000, 10, 8, 0.03);
      assert.ok(h.some((o) => o.ok === null));
      const r = checkLinearizable(h);
      assert.equal(r.verdict, 'ok', r.message);
    }
  });

  it('accepts 2000 operations by 16 clients on 5 keys', () => {
    const r = checkLinearizable(hiddenLinearization(7, 2000, 5, 16).history);
    assert.equal(r.verdict, 'ok', r.message);
  });

  it('finds a lost write appended to a large history, on that key only', () => {
    const { history: h, final } = hiddenLinearization(8, 2000, 10, 8);
    const end = Math.max(...h.map((o) => o.return ?? o.call)) + 10;
    const last = final.get('key3') ?? null;
    const tail = [get(100, 'key3', last, end, end + 1), put(101, 'key3', 'late', end + 2, end + 3)];
    assert.equal(checkLinearizable([...h, ...tail]).verdict, 'ok');
    // The read after the completed put still sees the value it replaced.
    h.push(...tail, get(100, 'key3', last, end + 4, end + 5));
    const r = checkLinearizable(h);
    assert.equal(r.verdict, 'violation');
    assert.deepEqual(r.badKeys, ['key3']);
  });
});
