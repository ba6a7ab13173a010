import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CANARY_NAMES } from '../../src/raft/canaries.ts';
import { FAULT_KINDS, parseFaults } from '../../src/sim/options.ts';
import type { SimOptions } from '../../src/sim/options.ts';
import { runSimulation } from '../../src/sim/simulation.ts';

const ALL = parseFaults('all');

function options(seed: number, extra: Partial<SimOptions> = {}): SimOptions {
  return { seed, nodes: 5, faults: ALL, bugs: new Set(), ops: 200, trace: false, ...extra };
}

test('a seed replays exactly: same trace, same history', () => {
  const a = runSimulation(options(7, { trace: true }));
  const b = runSimulation(options(7, { trace: true }));
  assert.deepEqual(a.trace, b.trace);
  assert.deepEqual(a.history, b.history);
  assert.equal(a.events, b.events);
  assert.ok(a.trace.length > 50, 'the trace shows the run');
});

test('different seeds explore different runs', () => {
  const a = runSimulation(options(1));
  const b = runSimulation(options(2));
  assert.notDeepEqual(a.history, b.history);
});

test('healthy seeds with every fault report no violation and complete operations', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = runSimulation(options(seed));
    assert.deepEqual(r.violations, [], `seed ${seed}`);
    assert.ok(r.ops > 100, `seed ${seed} completed only ${r.ops} operations`);
  }
});

test('every node count from 3 to 7 runs clean', () => {
  for (let nodes = 3; nodes <= 7; nodes++) {
    const r = runSimulation(options(100 + nodes, { nodes }));
    assert.deepEqual(r.violations, [], `nodes=${nodes}`);
  }
});

test('without faults every operation completes with a definite answer', () => {
  const r = runSimulation(options(3, { faults: new Set() }));
  assert.deepEqual(r.violations, []);
  assert.equal(r.unknown, 0);
  assert.equal(r.ops, 200);
});

test('sessions expire during runs with a short idle window, and every checker still passes', () => {
  const expiring: number[] = [];
  for (let seed = 1; seed <= 60 && expiring.length < 5; seed++) {
    const r = runSimulation(options(seed));
    assert.deepEqual(r.violations, [], `seed ${seed}`);
    if (r.sessionsExpired > 0) expiring.push(seed);
  }
  assert.equal(expiring.length, 5, `sessions expired only in seeds [${expiring}]`);
});

test("an idle window shorter than a client's retries is caught by the checkers", () => {
  // Exactly-once needs the window to outlast every retry; 60 ms does not.
  for (let seed = 1; seed <= 60; seed++) {
    const r = runSimulation(options(seed, { sessionIdleMs: 60 }));
    if (r.violations.length === 0) continue;
    assert.match(r.violations[0]!, /linearizability/);
    assert.ok(r.sessionsExpired > 0);
    return;
  }
  assert.fail('a 60 ms session idle window went unnoticed in seeds 1..60');
});

test('parseFaults knows every family and rejects unknown names', () => {
  assert.deepEqual([...parseFaults('all')].sort(), [...FAULT_KINDS].sort());
  assert.deepEqual([...parseFaults('loss,crash')], ['loss', 'crash']);
  assert.equal(parseFaults('none').size, 0);
  assert.throws(() => parseFaults('meteor'), /unknown fault 'meteor'/);
});

test('quiescence: a share of seeds enables it, and their groups go quiet, also under faults', () => {
  let quiesceSeeds = 0;
  let quietSeeds = 0;
  let quietUnderFaults = 0;
  for (let seed = 1; seed <= 12; seed++) {
    const r = runSimulation(options(seed));
    assert.deepEqual(r.violations, [], `seed ${seed}`);
    if (r.quiesce) quiesceSeeds++;
    else assert.equal(r.quietTicks, 0, `seed ${seed} has quiescence off`);
    if (r.quietTicks > 0) quietSeeds++;
    if (r.safetyQuietTicks > 0) quietUnderFaults++;
  }
  assert.ok(quiesceSeeds >= 3 && quiesceSeeds <= 9, `${quiesceSeeds} of 12 seeds quiesce`);
  assert.equal(quietSeeds, quiesceSeeds, 'every seed with quiescence spent ticks quiet');
  assert.ok(quietUnderFaults > 0, 'idle gaps let groups go quiet in the safety phase');
});

test('tables: a share of seeds runs row operations, checked per row, and every checker passes', () => {
  const tableSeeds: number[] = [];
  let tableOps = 0;
  for (let seed = 1; seed <= 12; seed++) {
    const r = runSimulation(options(seed));
    assert.deepEqual(r.violations, [], `seed ${seed}`);
    const rows = r.history.filter((o) => o.key.startsWith('row:'));
    assert.equal(r.tableOps, rows.length, `seed ${seed} counts its row operations`);
    if (rows.length === 0) continue;
    tableSeeds.push(seed);
    tableOps += rows.length;
    // Rows are written, read back with values, and compared-and-set both ways.
    assert.ok(
      rows.some((o) => o.op === 'get' && o.ok === true && o.output !== null),
      `${seed}`,
    );
    assert.ok(
      rows.some((o) => o.op === 'cas' && o.ok === true),
      `seed ${seed}: no row cas swapped`,
    );
  }
  assert.ok(tableSeeds.length >= 3 && tableSeeds.length <= 9, `table seeds: [${tableSeeds}]`);
  assert.ok(tableOps > 200, `only ${tableOps} row operations`);
});

test('the row canary is caught on a row by linearizability, and leaves key-value seeds alone', () => {
  const bugs = new Set(['row-update-ignores-condition'] as const);
  let caught = false;
  for (let seed = 1; seed <= 12; seed++) {
    const clean = runSimulation(options(seed));
    const r = runSimulation(options(seed, { bugs }));
    if (clean.tableOps === 0) {
      // The canary lives in the state machine's row path: a run without rows never meets it.
      assert.deepEqual(r.violations, [], `seed ${seed}`);
      assert.deepEqual(r.history, clean.history, `seed ${seed}`);
    } else if (!caught && r.violations.length > 0) {
      assert.match(r.violations[0]!, /^linearizability: violation on keys \[row:/);
      caught = true;
    }
  }
  assert.ok(caught, 'a conditional row update that ignores its condition went unnoticed');
});

// Canaries: each deliberate bug must be caught within the first 200 seeds
// with every fault on. A checker that cannot fail is worth nothing.
for (const bug of CANARY_NAMES) {
  test(`canary ${bug} is caught within 200 seeds`, () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = runSimulation(options(seed, { bugs: new Set([bug]) }));
      if (r.violations.length > 0) return;
    }
    assert.fail(`canary ${bug} was not caught in seeds 1..200`);
  });
}
