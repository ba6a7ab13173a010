/**
 * `npm run sim`: runs simulator seeds and reports violations.
 *
 *   npm run sim -- --seeds N [--start S] [--nodes K] [--faults LIST|all] [--bug NAME] [--fail-fast] [--jobs J]
 *   npm run sim -- --seed S [--trace]
 *   npm run sim -- --list-bugs
 *
 * Prints one line per failing seed with the command that replays it, and as
 * its last line `sim: seeds=N ops=M violations=V` (V counts failing seeds),
 * after a line counting the seeds with quiescence and the node ticks spent quiet,
 * and one counting the operations on table rows and the seeds that ran them.
 * Exits 0 if and only if V is 0. Seeds run in parallel child processes
 * (one per core by default); results do not depend on the number of jobs.
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { CANARIES, CANARY_NAMES, isCanaryName } from '../raft/canaries.ts';
import type { CanaryName } from '../raft/canaries.ts';
import { DEFAULT_OPS, parseFaults } from '../sim/options.ts';
import type { SimOptions } from '../sim/options.ts';
import { runSimulation } from '../sim/simulation.ts';
import type { SimResult } from '../sim/simulation.ts';
import { intOption } from './args.ts';

interface SeedSummary {
  seed: number;
  ops: number;
  unknown: number;
  violations: readonly string[];
  events: number;
  sessionsExpired: number;
  quiesce: boolean;
  quietTicks: number;
  tableOps: number;
}

interface Args {
  seeds: number;
  start: number;
  nodes: number;
  faults: string;
  bug: CanaryName | undefined;
  failFast: boolean;
  ops: number;
  jobs: number;
}

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run sim -- --seeds N [--start S] [--nodes K] [--faults LIST|all] [--bug NAME] [--fail-fast] [--jobs J] [--ops N]\n` +
      `       npm run sim -- --seed S [--trace] [--nodes K] [--faults LIST|all] [--bug NAME]\n` +
      `       npm run sim -- --list-bugs\n`,
  );
  process.exit(2);
}

function intArg(v: string | undefined, name: string, dflt: number, min: number): number {
  return intOption(v, name, dflt, min, usage);
}

export function replayCommand(
  seed: number,
  a: Pick<Args, 'nodes' | 'faults' | 'bug' | 'ops'>,
): string {
  const parts = [`npm run sim -- --seed ${seed} --nodes ${a.nodes} --faults ${a.faults}`];
  if (a.bug !== undefined) parts.push(`--bug ${a.bug}`);
  if (a.ops !== DEFAULT_OPS) parts.push(`--ops ${a.ops}`);
  parts.push('--trace');
  return parts.join(' ');
}

function simOptions(seed: number, a: Args, trace: boolean): SimOptions {
  return {
    seed,
    nodes: a.nodes,
    faults: parseFaults(a.faults),
    bugs: new Set(a.bug === undefined ? [] : [a.bug]),
    ops: a.ops,
    trace,
  };
}

function summarize(r: SimResult): SeedSummary {
  return {
    seed: r.seed,
    ops: r.ops,
    unknown: r.unknown,
    violations: r.violations,
    events: r.events,
    sessionsExpired: r.sessionsExpired,
    quiesce: r.quiesce,
    quietTicks: r.quietTicks,
    tableOps: r.tableOps,
  };
}

/** Worker mode: runs the seeds it is sent and reports each result. */
function worker(a: Args): void {
  process.on('message', (msg: { seed?: number; done?: boolean }) => {
    if (msg.done === true) process.exit(0);
    const seed = msg.seed!;
    const r = runSimulation(simOptions(seed, a, false));
    process.send!(summarize(r));
  });
  process.send!({ ready: true });
}

async function runMany(a: Args): Promise<number> {
  const seeds = Array.from({ length: a.seeds }, (_, i) => a.start + i);
  const jobs = Math.max(1, Math.min(a.jobs, seeds.length));
  const results = new Map<number, SeedSummary>();
  let next = 0;
  let stop = false;
  let reported = 0;
  const order = (): void => {
    // Report failures in seed order as soon as every earlier seed is known.
    while (reported < seeds.length && results.has(seeds[reported]!)) {
      const r = results.get(seeds[reported]!)!;
      if (r.violations.length > 0) {
        process.stdout.write(
          `FAIL seed=${r.seed}: ${r.violations[0]}\n  replay: ${replayCommand(r.seed, a)}\n`,
        );
      }
      reported++;
    }
  };
  const childArgs = process.argv.slice(2).filter((x) => x !== '--worker');
  await Promise.all(
    Array.from({ length: jobs }, () => {
      return new Promise<void>((resolve, reject) => {
        const child = fork(process.argv[1]!, [...childArgs, '--worker'], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        const feed = (): void => {
          if (stop || next >= seeds.length) {
            child.send({ done: true });
            return;
          }
          child.send({ seed: seeds[next++] });
        };
        child.on('message', (msg: SeedSummary | { ready: true }) => {
          if ('ready' in msg) {
            feed();
            return;
          }
          results.set(msg.seed, msg);
          if (msg.violations.length > 0 && a.failFast) stop = true;
          order();
          feed();
        });
        child.on('exit', (code) => {
          if (code === 0) resolve();
          else reject(new Error(`simulator worker exited with ${code}`));
        });
      });
    }),
  );
  order();
  let ops = 0;
  let violations = 0;
  let unknown = 0;
  let expired = 0;
  let expiringSeeds = 0;
  let quiesceSeeds = 0;
  let quietSeeds = 0;
  let quietTicks = 0;
  let tableOps = 0;
  let tableSeeds = 0;
  for (const r of results.values()) {
    tableOps += r.tableOps;
    if (r.tableOps > 0) tableSeeds++;
    ops += r.ops;
    unknown += r.unknown;
    expired += r.sessionsExpired;
    if (r.sessionsExpired > 0) expiringSeeds++;
    if (r.quiesce) quiesceSeeds++;
    if (r.quietTicks > 0) quietSeeds++;
    quietTicks += r.quietTicks;
    if (r.violations.length > 0) violations++;
  }
  if (stop) {
    // Fail-fast: report the failures among the seeds that did run, in order.
    for (const s of seeds.slice(reported)) {
      const r = results.get(s);
      if (r !== undefined && r.violations.length > 0) {
        process.stdout.write(
          `FAIL seed=${r.seed}: ${r.violations[0]}\n  replay: ${replayCommand(r.seed, a)}\n`,
        );
      }
    }
  }
  process.stdout.write(`sim: unknown-outcome ops=${unknown}\n`);
  process.stdout.write(`sim: sessions expired=${expired} in ${expiringSeeds} seeds\n`);
  process.stdout.write(
    `sim: quiescence seeds=${quiesceSeeds} seeds-gone-quiet=${quietSeeds} quiet-ticks=${quietTicks}\n`,
  );
  process.stdout.write(`sim: table ops=${tableOps} in ${tableSeeds} seeds\n`);
  process.stdout.write(`sim: seeds=${results.size} ops=${ops} violations=${violations}\n`);
  return violations === 0 ? 0 : 1;
}

function runOne(seed: number, a: Args, trace: boolean): number {
  const r = runSimulation(simOptions(seed, a, trace));
  if (trace) for (const line of r.trace) process.stdout.write(`${line}\n`);
  for (const v of r.violations) process.stdout.write(`VIOLATION seed=${seed}: ${v}\n`);
  if (r.violations.length > 0) process.stdout.write(`  replay: ${replayCommand(seed, a)}\n`);
  process.stdout.write(
    `sim: seed=${seed} virtual=${(r.virtualMs / 1000).toFixed(2)}s events=${r.events} unknown=${r.unknown} sessions-expired=${r.sessionsExpired} quiesce=${r.quiesce} quiet-ticks=${r.quietTicks} table-ops=${r.tableOps}\n`,
  );
  process.stdout.write(`sim: seeds=1 ops=${r.ops} violations=${r.violations.length > 0 ? 1 : 0}\n`);
  return r.violations.length === 0 ? 0 : 1;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        seeds: { type: 'string' },
        seed: { type: 'string' },
        start: { type: 'string' },
        nodes: { type: 'string' },
        faults: { type: 'string' },
        bug: { type: 'string' },
        'fail-fast': { type: 'boolean' },
        trace: { type: 'boolean' },
        'list-bugs': { type: 'boolean' },
        jobs: { type: 'string' },
        ops: { type: 'string' },
        worker: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  if (parsed['list-bugs'] === true) {
    for (const name of CANARY_NAMES) process.stdout.write(`${name}\n`);
    return;
  }
  const bug = parsed.bug;
  if (bug !== undefined && !isCanaryName(bug)) {
    usage(`unknown bug '${bug}'; known: ${Object.keys(CANARIES).join(', ')}`);
  }
  const faults = parsed.faults ?? 'all';
  try {
    parseFaults(faults);
  } catch (e) {
    usage((e as Error).message);
  }
  const a: Args = {
    seeds: intArg(parsed.seeds, 'seeds', 1, 1),
    start: intArg(parsed.start, 'start', 1, 0),
    nodes: intArg(parsed.nodes, 'nodes', 5, 3),
    faults,
    bug,
    failFast: parsed['fail-fast'] === true,
    ops: intArg(parsed.ops, 'ops', DEFAULT_OPS, 30),
    jobs: intArg(parsed.jobs, 'jobs', availableParallelism(), 1),
  };
  if (a.nodes > 7) usage('--nodes must be between 3 and 7');
  if (parsed.worker === true) {
    worker(a);
    return;
  }
  if (parsed.seed !== undefined) {
    process.exitCode = runOne(intArg(parsed.seed, 'seed', 0, 0), a, parsed.trace === true);
    return;
  }
  process.exitCode = await runMany(a);
}

await main();
