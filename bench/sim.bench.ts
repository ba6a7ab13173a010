/**
 * `npm run bench:sim`: simulator throughput on a fixed set of seeds.
 *
 *   npm run bench:sim -- [--seeds N] [--start S] [--warmup W]
 *
 * Runs seeds S..S+N-1 (default 1..100), 5 nodes, all faults, one after the
 * other in this process (one core, no trace), and reports simulated client
 * operations per wall-clock second, seeds per minute, simulator events per
 * second and how much faster than real time the virtual clock runs. The last
 * line is JSON for scripts:
 *
 *   {"seeds":..,"ops":..,"opsPerSec":..,"seedsPerMin":..,"eventsPerSec":..,...}
 *
 * A benchmark, not a test: nothing is asserted about timing, and seeds that
 * report violations are counted (npm run sim is what judges them).
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEFAULT_OPS, parseFaults } from '../src/sim/options.ts';
import type { SimOptions } from '../src/sim/options.ts';
import { runSimulation } from '../src/sim/simulation.ts';
import { intOption } from '../src/cli/args.ts';
import { quantile, fmt, round } from './report.ts';

const NODES = 5;
const FAULTS = 'all';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run bench:sim -- [--seeds N] [--start S] [--warmup W]\n`,
  );
  process.exit(2);
}

function intArg(v: string | undefined, name: string, dflt: number, min: number): number {
  return intOption(v, name, dflt, min, usage);
}

function options(seed: number): SimOptions {
  return {
    seed,
    nodes: NODES,
    faults: parseFaults(FAULTS),
    bugs: new Set(),
    ops: DEFAULT_OPS,
    trace: false,
  };
}

function main(): void {
  let values;
  try {
    values = parseArgs({
      options: {
        seeds: { type: 'string' },
        start: { type: 'string' },
        warmup: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  const seeds = intArg(values.seeds, 'seeds', 100, 1);
  const start = intArg(values.start, 'start', 1, 0);
  const warmup = intArg(values.warmup, 'warmup', 0, 0);

  process.stdout.write(
    `bench:sim: seeds ${start}..${start + seeds - 1}, ${NODES} nodes, faults=${FAULTS}, ` +
      `ops/seed=${DEFAULT_OPS}, warmup=${warmup}, node ${process.version}, single core\n`,
  );
  // Optional warm-up on seeds outside the measured set (JIT), not counted.
  for (let i = 0; i < warmup; i++) runSimulation(options(start + seeds + i));

  let ops = 0;
  let unknown = 0;
  let events = 0;
  let virtualMs = 0;
  let failing = 0;
  const perSeedMs: number[] = [];
  const t0 = performance.now();
  for (let seed = start; seed < start + seeds; seed++) {
    const s0 = performance.now();
    const r = runSimulation(options(seed));
    perSeedMs.push(performance.now() - s0);
    ops += r.ops;
    unknown += r.unknown;
    events += r.events;
    virtualMs += r.virtualMs;
    if (r.violations.length > 0) failing++;
  }
  const wallMs = performance.now() - t0;
  const wallS = wallMs / 1000;
  perSeedMs.sort((a, b) => a - b);

  const opsPerSec = ops / wallS;
  const seedsPerMin = (seeds / wallS) * 60;
  const eventsPerSec = events / wallS;
  const virtualToWall = virtualMs / wallMs;

  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  out(`  wall time          ${fmt(wallS, 2)} s for ${seeds} seeds`);
  out(
    `  per seed           mean ${fmt(wallMs / seeds, 1)} ms, p50 ${fmt(quantile(perSeedMs, 0.5), 1)} ms, ` +
      `p99 ${fmt(quantile(perSeedMs, 0.99), 1)} ms, max ${fmt(quantile(perSeedMs, 1), 1)} ms`,
  );
  out(`  simulated ops      ${fmt(ops)} definite, ${fmt(unknown)} unknown outcome`);
  out(`  ops/s              ${fmt(opsPerSec)} simulated operations per wall-clock second`);
  out(`  seeds/min          ${fmt(seedsPerMin, 1)} (single core)`);
  out(`  events/s           ${fmt(eventsPerSec)} (${fmt(events)} events)`);
  out(
    `  virtual:wall       ${fmt(virtualToWall, 1)}x (${fmt(virtualMs / 1000, 1)} s virtual in ${fmt(wallS, 2)} s wall)`,
  );
  if (failing > 0)
    out(`  note               ${failing} seed(s) reported violations (see npm run sim)`);
  out(
    JSON.stringify({
      seeds,
      ops,
      opsPerSec: round(opsPerSec, 1),
      seedsPerMin: round(seedsPerMin, 1),
      eventsPerSec: round(eventsPerSec, 0),
      events,
      wallMs: round(wallMs, 1),
      virtualToWall: round(virtualToWall, 2),
    }),
  );
}

main();
