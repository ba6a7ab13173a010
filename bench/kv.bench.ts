/**
 * `npm run bench` (also `npm run bench:kv`): the key-value API through {@link TesseraClient}.
 *
 *   npm run bench -- [--endpoints 127.0.0.1:8001,127.0.0.1:8002,...] [--seconds S] [--etcd]
 *
 * Without `--endpoints` it starts a 3-node cluster of `tessera start`
 * processes on free loopback ports in a temp dir, and removes it after.
 * Each phase runs for S seconds (default 3):
 *
 *   put-latency   1 client, 1 put at a time: p50/p99 latency
 *   put           64 puts in flight (64 sessions): ops/s, p50/p99
 *   get-lin       64 linearizable gets in flight: ops/s
 *   get-ser       64 serializable gets in flight: ops/s
 *   cas           8 clients on one key, each get-then-cas: cas attempts/s, success ratio
 *
 * With `--etcd` (or `--baseline etcd`) the same phases then run against a
 * local 3-member etcd cluster (see etcd-baseline.ts), started after the
 * Tessera cluster is stopped, and each figure is printed beside etcd's with
 * the ratio tessera/etcd (the JSON gains `etcd` and `ratios`). Without
 * `/usr/bin/etcd` the baseline is skipped with a line saying so.
 *
 * The last line is a JSON summary for scripts. A benchmark, not a test:
 * nothing is asserted about timing; failed operations are counted.
 */
import { parseArgs } from 'node:util';
import { TesseraClient } from '../src/client/client.ts';
import { startCluster, waitForWrites } from './cluster.ts';
import { etcdMissing, startEtcdCluster, type EtcdCluster } from './etcd-baseline.ts';
import { secondsOption, phase, report, type PhaseResult } from './phase.ts';
import { fmt, round } from './report.ts';
import { freePorts } from '../src/node/ports.ts';

const IN_FLIGHT = 64;
const CAS_CLIENTS = 8;
const KEYS = 1_000;
const VALUE = 'v'.repeat(100);

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run bench -- [--endpoints LIST] [--seconds S] [--etcd]\n`,
  );
  process.exit(2);
}

/** What the phases need of a store: Tessera through its client, or the etcd baseline. */
interface KvTarget {
  put(key: string, value: string): Promise<unknown>;
  get(key: string, serializable: boolean): Promise<string | null>;
  /** The client the `w`-th cas worker uses (each its own, as separate processes would). */
  casClient(w: number): {
    get(key: string): Promise<string | null>;
    cas(key: string, expect: string | null, value: string): Promise<boolean>;
  };
}

/** Everything one run of the phases measured. */
interface KvResults {
  readonly putLatency: PhaseResult;
  readonly put: PhaseResult;
  readonly getLin: PhaseResult;
  readonly getSer: PhaseResult;
  readonly cas: PhaseResult;
  readonly swapped: number;
  readonly counter: number;
  readonly casSuccessRatio: number;
}

/** The five phases against `target`, each reported as it ends. */
async function runPhases(target: KvTarget, seconds: number): Promise<KvResults> {
  const key = (w: number, i: number): string => `bench-${(w * 7919 + i) % KEYS}`;

  const putLatency = await phase(seconds, 1, (w, i) => target.put(key(w, i), VALUE));
  report('put-latency', putLatency);
  const put = await phase(seconds, IN_FLIGHT, (w, i) => target.put(key(w, i), VALUE));
  report('put x64', put);
  const getLin = await phase(seconds, IN_FLIGHT, (w, i) => target.get(key(w, i), false));
  report('get-lin x64', getLin);
  const getSer = await phase(seconds, IN_FLIGHT, (w, i) => target.get(key(w, i), true));
  report('get-ser x64', getSer);

  // CAS under contention: 8 clients increment one counter by get-then-cas.
  const casClients = Array.from({ length: CAS_CLIENTS }, (_, w) => target.casClient(w));
  await target.put('bench-counter', '0');
  let swapped = 0;
  const cas = await phase(seconds, CAS_CLIENTS, async (w) => {
    const c = casClients[w]!;
    const cur = await c.get('bench-counter');
    const ok = await c.cas('bench-counter', cur, String(Number(cur) + 1));
    if (ok) swapped += 1;
  });
  const counter = Number(await target.get('bench-counter', false));
  const casSuccessRatio = cas.ops === 0 ? 0 : round(swapped / cas.ops, 3);
  process.stdout.write(
    `cas x8 1key ${fmt(cas.opsPerSec, 0).padStart(8)} attempts/s   success ${fmt(
      casSuccessRatio * 100,
      1,
    )}%   (${cas.ops} attempts, ${swapped} swapped, counter ${counter}, ${cas.errors} errors)\n`,
  );
  return { putLatency, put, getLin, getSer, cas, swapped, counter, casSuccessRatio };
}

/** The JSON summary of one run of the phases (the top-level shape scripts already read). */
function summarize(r: KvResults): Record<string, unknown> {
  return {
    putLatency: {
      p50Ms: r.putLatency.p50Ms,
      p99Ms: r.putLatency.p99Ms,
      opsPerSec: r.putLatency.opsPerSec,
      errors: r.putLatency.errors,
    },
    putThroughput: { inFlight: IN_FLIGHT, ...r.put },
    getLinearizable: { inFlight: IN_FLIGHT, ...r.getLin },
    getSerializable: { inFlight: IN_FLIGHT, ...r.getSer },
    casContention: {
      clients: CAS_CLIENTS,
      attemptsPerSec: r.cas.opsPerSec,
      successRatio: r.casSuccessRatio,
      attempts: r.cas.ops,
      swapped: r.swapped,
      counter: r.counter,
      errors: r.cas.errors,
    },
  };
}

/** The figures compared with the baseline: [JSON name, label, unit, pick]. */
const COMPARED: readonly [string, string, string, (r: KvResults) => number][] = [
  ['putLatencyP50', 'put-latency p50', 'ms', (r) => r.putLatency.p50Ms],
  ['putLatencyP99', 'put-latency p99', 'ms', (r) => r.putLatency.p99Ms],
  ['putOpsPerSec', 'put x64', 'ops/s', (r) => r.put.opsPerSec],
  ['putP99', 'put x64 p99', 'ms', (r) => r.put.p99Ms],
  ['getLinOpsPerSec', 'get-lin x64', 'ops/s', (r) => r.getLin.opsPerSec],
  ['getSerOpsPerSec', 'get-ser x64', 'ops/s', (r) => r.getSer.opsPerSec],
  ['casAttemptsPerSec', 'cas x8 1key', 'att/s', (r) => r.cas.opsPerSec],
  ['casSuccessRatio', 'cas success', 'ratio', (r) => r.casSuccessRatio],
];

/** Prints tessera, etcd and tessera/etcd per compared figure; returns the ratios. */
function compare(tessera: KvResults, etcd: KvResults): Record<string, number | null> {
  const ratios: Record<string, number | null> = {};
  process.stdout.write(
    `\n${'vs etcd'.padEnd(16)} ${'tessera'.padStart(10)} ${'etcd'.padStart(10)}  tessera/etcd\n`,
  );
  for (const [name, label, unit, pick] of COMPARED) {
    const t = pick(tessera);
    const e = pick(etcd);
    const ratio = e === 0 ? null : round(t / e, 3);
    ratios[name] = ratio;
    const digits = unit === 'ms' ? 2 : unit === 'ratio' ? 3 : 0;
    process.stdout.write(
      `${label.padEnd(16)} ${fmt(t, digits).padStart(10)} ${fmt(e, digits).padStart(10)}  ` +
        `${ratio === null ? 'n/a' : fmt(ratio, 3).padStart(8)}  (${unit}${
          unit === 'ms' ? ', lower is better' : ''
        })\n`,
    );
  }
  return ratios;
}

async function main(): Promise<void> {
  let values: { endpoints?: string; seconds?: string; etcd?: boolean; baseline?: string };
  try {
    values = parseArgs({
      options: {
        endpoints: { type: 'string' },
        seconds: { type: 'string' },
        etcd: { type: 'boolean' },
        baseline: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  const seconds = secondsOption(values.seconds, usage);
  if (values.baseline !== undefined && values.baseline !== 'etcd') {
    usage('--baseline must be "etcd"');
  }
  const withEtcd = values.etcd === true || values.baseline === 'etcd';
  const cluster = values.endpoints === undefined ? await startCluster('bench-kv') : null;
  const endpoints = cluster?.endpoints ?? values.endpoints!.split(',').filter((e) => e !== '');
  if (endpoints.length === 0) usage('--endpoints needs at least one host:port');
  let tessera: KvResults;
  try {
    const client = new TesseraClient({ endpoints, concurrentWritesMax: IN_FLIGHT });
    await waitForWrites(client);
    process.stdout.write(
      `bench:kv  endpoints ${endpoints.join(',')}${cluster ? ' (local 3-node cluster)' : ''}` +
        `  ${seconds} s per phase\n`,
    );
    tessera = await runPhases(
      {
        put: (k, v) => client.put(k, v),
        get: (k, serializable) =>
          client.get(k, serializable ? { consistency: 'serializable' } : {}),
        casClient: () => {
          const c = new TesseraClient({ endpoints });
          return { get: (k) => c.get(k), cas: (k, expect, v) => c.cas(k, expect, v) };
        },
      },
      seconds,
    );
  } finally {
    // Stopped before etcd starts: the two clusters never share the machine at once.
    await cluster?.stop();
  }

  const summary: Record<string, unknown> = {
    bench: 'kv',
    endpoints: endpoints.length,
    localCluster: cluster !== null,
    secondsPerPhase: seconds,
    ...summarize(tessera),
  };
  if (withEtcd) {
    const missing = etcdMissing();
    if (missing !== null) {
      process.stdout.write(`baseline: etcd skipped: ${missing}\n`);
      summary.etcd = { skipped: missing };
    } else {
      let etcd: EtcdCluster | null = null;
      try {
        etcd = await startEtcdCluster(await freePorts(6));
        const leader = etcd.leader;
        process.stdout.write(
          `\nbaseline: etcd ${etcd.version}, local 3-member cluster ${etcd.clientUrls.join(',')}` +
            ` (leader ${etcd.leaderUrl}), v3 JSON gateway  ${seconds} s per phase\n`,
        );
        const results = await runPhases(
          {
            put: (k, v) => leader.put(k, v),
            get: (k, serializable) => leader.get(k, serializable),
            casClient: () => leader,
          },
          seconds,
        );
        summary.etcd = { version: etcd.version, ...summarize(results) };
        summary.ratios = { of: 'tessera/etcd', ...compare(tessera, results) };
      } catch (e) {
        const why = (e as Error).message;
        process.stdout.write(`baseline: etcd failed: ${why}\n`);
        summary.etcd = { failed: why.split('\n')[0] };
      } finally {
        await etcd?.stop();
      }
    }
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
