/**
 * `npm run bench:tables`: tables (putRow, getRow, scan, garbage collection)
 * through {@link TesseraClient}, with the key-value put rate of the same
 * cluster in the same run as the baseline.
 *
 *   npm run bench:tables -- [--endpoints 127.0.0.1:8001,127.0.0.1:8002,...] [--seconds S]
 *
 * Without `--endpoints` it starts a 3-node cluster (see cluster.ts) and
 * removes it after. Each timed phase runs for S seconds (default 3):
 *
 *   kv-put x64       64 key-value puts in flight (100-byte values): the baseline
 *   putRow x64       64 putRow in flight, new rows (2-column key, 5 attributes, ~200 bytes)
 *   getRow-lin x64   64 linearizable getRow in flight, of rows written above
 *   getRow-ser x64   64 serializable getRow in flight
 *   scan x1          1 scanner, pages of 100 in sequence over the table, again from the start
 *   scan x8          8 such scanners at once
 *   put-nogc x64     64 putRow in flight of new rows on another table, no garbage anywhere
 *   overwrite x64    64 updateRow in flight for OVERWRITE_PHASE_FACTOR * S seconds, each
 *                    worker writing all 5 attribute columns of its own row again and
 *                    again, on a table that keeps MAX_VERSIONS_LIMIT versions; then the
 *                    table is altered to maxVersions 1, which hides every version but
 *                    the newest at once: the garbage GC then removes
 *   put-gc x64       put-nogc again, from the alter until the last growth of the GC
 *                    metric (at least S seconds if it does not grow): while GC collects
 *   gc drain         polls every node's tessera_table_gc_removed_records_total until
 *                    it has not grown for GC_QUIET_MS (at most GC_WAIT_MS_MAX),
 *                    from the alter on, alongside put-gc
 *
 * Why the alter: one gc command per GC_INTERVAL_MS examines up to
 * GC_BUDGET_DEFAULT records, more than a 3-node cluster on a small machine
 * writes in that time, so garbage made under maxVersions 1 is collected
 * about as fast as it is made and leaves no backlog whose collection could
 * be measured. Versions kept, then hidden all at once, are such a backlog.
 *
 * Throughputs are also printed as ratios to kv-put x64, and put-gc as a ratio
 * to put-nogc. GC figures are summed over the nodes' /metrics (with
 * `--endpoints`, over the nodes listed). The last line is a JSON summary. A
 * benchmark, not a test: nothing is asserted about timing; failed
 * operations are counted.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { TesseraClient } from '../src/client/client.ts';
import type { PkBoundOf, TableHandle } from '../src/client/tables.ts';
import { MAX_VERSIONS_LIMIT } from '../src/table/schema.ts';
import { GC_INTERVAL_MS } from '../src/node/server.ts';
import { startCluster, waitForWrites } from './cluster.ts';
import { secondsOption, PHASE_OPS_MAX, phase, report, type PhaseResult } from './phase.ts';
import { fmt, quantile, round } from './report.ts';

const IN_FLIGHT = 64;
const SCANNERS = 8;
const SCAN_PAGE_ROWS = 100;
/** Keys the key-value baseline writes over (as kv.bench.ts). */
const KV_KEYS = 1_000;
const KV_VALUE = 'v'.repeat(100);
/** Rows of the garbage table: one per worker, so that its overwrites never race. */
const GARBAGE_ROWS = IN_FLIGHT;
/**
 * The overwrite phase lasts this many times --seconds: it writes garbage
 * more slowly than GC removes it, and the backlog should outlast put-gc.
 */
const OVERWRITE_PHASE_FACTOR = 5;
/** Overwrites at most: no row gets more versions than the table keeps. */
const OVERWRITES_MAX = GARBAGE_ROWS * (MAX_VERSIONS_LIMIT - 1);
/** The GC metric counts as settled once it has not grown for this long, in ms. */
const GC_QUIET_MS = 3 * GC_INTERVAL_MS;
/**
 * How long the metric may stay flat before its first growth, in ms: the
 * first gc command can take longer than GC_QUIET_MS to be proposed and applied.
 */
const GC_FIRST_GROWTH_WAIT_MS = 30_000;
/** How long the benchmark waits at most for the GC metric to settle, in ms. */
const GC_WAIT_MS_MAX = 180_000;
const GC_POLL_MS = 250;
const GC_METRIC = 'tessera_table_gc_removed_records_total';
const NAME_WIDTH = 15;

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run bench:tables -- [--endpoints LIST] [--seconds S]\n`,
  );
  process.exit(2);
}

/** The benchmark's row: a 2-column primary key and 5 attribute columns. */
type Row = {
  tenant: string;
  id: bigint;
  name: string;
  email: string;
  score: bigint;
  balance: number;
  note: string;
};
type Key = 'tenant' | 'id';
type Table = TableHandle<Row, Key>;

const NOTE = 'n'.repeat(110);

/** Row (tenant, id) with values of about 200 bytes in all. */
function row(tenant: string, id: number, i: number): Row {
  return {
    tenant,
    id: BigInt(id),
    name: `user-${String(id).padStart(10, '0')}`,
    email: `user-${String(id).padStart(10, '0')}@example.com`,
    score: BigInt(i),
    balance: i * 0.25,
    note: NOTE,
  };
}

/** Worker `w`'s tenant: 8 tenants, so the key's first column repeats as a real table's would. */
const tenantOf = (w: number): string => `tenant-${w % 8}`;
/** Ids per worker: worker w writes ids w * ID_STRIDE + i, never colliding with another. */
const ID_STRIDE = 10_000_000;

/** The sum of {@link GC_METRIC} over `endpoints`; a node that does not answer counts 0. */
async function gcRemoved(endpoints: readonly string[]): Promise<number> {
  const values = await Promise.all(
    endpoints.map(async (e) => {
      try {
        const res = await fetch(`http://${e}/metrics`, { signal: AbortSignal.timeout(2_000) });
        const m = new RegExp(`^${GC_METRIC} (\\S+)$`, 'm').exec(await res.text());
        return m === null ? 0 : Number(m[1]);
      } catch {
        return 0;
      }
    }),
  );
  return values.reduce((a, b) => a + b, 0);
}

/** When the GC metric last grew, and its value then. */
interface GcSettled {
  /** performance.now() when it last grew; null if it did not grow while polled. */
  readonly lastGrowthAtMs: number | null;
  readonly removed: number;
  /** False if GC_WAIT_MS_MAX passed with the metric still growing. */
  readonly settled: boolean;
}

/**
 * Polls the GC metric until it has not grown for GC_QUIET_MS since its last
 * growth (GC_FIRST_GROWTH_WAIT_MS if it has not grown yet); bounded by GC_WAIT_MS_MAX.
 */
async function waitForGcQuiet(endpoints: readonly string[]): Promise<GcSettled> {
  const start = performance.now();
  let removed = await gcRemoved(endpoints);
  let lastGrowthAtMs: number | null = null;
  for (;;) {
    const now = performance.now();
    const quietMs = lastGrowthAtMs === null ? GC_FIRST_GROWTH_WAIT_MS : GC_QUIET_MS;
    if (now - (lastGrowthAtMs ?? start) >= quietMs)
      return { lastGrowthAtMs, removed, settled: true };
    if (now - start >= GC_WAIT_MS_MAX) return { lastGrowthAtMs, removed, settled: false };
    await new Promise((resolve) => setTimeout(resolve, GC_POLL_MS));
    const v = await gcRemoved(endpoints);
    if (v > removed) {
      removed = v;
      lastGrowthAtMs = performance.now();
    }
  }
}

/** The figures of the operations that completed in [fromMs, toMs]; errors are left to the caller. */
function window(
  done: readonly { doneAtMs: number; latencyMs: number }[],
  fromMs: number,
  toMs: number,
): PhaseResult {
  const inside = done.filter((d) => d.doneAtMs >= fromMs && d.doneAtMs <= toMs);
  const sorted = Float64Array.from(inside.map((d) => d.latencyMs)).sort();
  const elapsedS = Math.max(toMs - fromMs, 1) / 1_000;
  return {
    ops: inside.length,
    errors: 0,
    opsPerSec: round(inside.length / elapsedS, 1),
    p50Ms: round(quantile(sorted, 0.5), 2),
    p99Ms: round(quantile(sorted, 0.99), 2),
    elapsedS: round(elapsedS, 3),
  };
}

/** `scanners` loops, each reading the table page by page and starting over at its end. */
async function scanPhase(
  table: Table,
  seconds: number,
  scanners: number,
): Promise<{ pages: PhaseResult; rows: number; rowsPerSec: number; passes: number }> {
  type Cursor = { readonly start: PkBoundOf<Row, Key>; readonly exclusive: boolean } | null;
  const cursors: Cursor[] = Array.from({ length: scanners }, () => null);
  let rows = 0;
  let passes = 0;
  const pages = await phase(seconds, scanners, async (w) => {
    const from = cursors[w] ?? null;
    const page = await table.scan({
      limit: SCAN_PAGE_ROWS,
      ...(from === null ? {} : { start: from.start, startExclusive: from.exclusive }),
    });
    rows += page.rows.length;
    if (page.next === null) passes += 1;
    cursors[w] = page.next === null ? null : { start: page.next, exclusive: page.nextExclusive };
  });
  return { pages, rows, rowsPerSec: round(rows / pages.elapsedS, 1), passes };
}

/** A throughput and its ratio to the baseline's, for the JSON summary. */
const vsKv = (opsPerSec: number, kvOpsPerSec: number): number | null =>
  kvOpsPerSec === 0 ? null : round(opsPerSec / kvOpsPerSec, 3);

async function main(): Promise<void> {
  let values: { endpoints?: string; seconds?: string };
  try {
    values = parseArgs({
      options: { endpoints: { type: 'string' }, seconds: { type: 'string' } },
      strict: true,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  const seconds = secondsOption(values.seconds, usage);
  const cluster = values.endpoints === undefined ? await startCluster('bench-tables') : null;
  const endpoints = cluster?.endpoints ?? values.endpoints!.split(',').filter((e) => e !== '');
  if (endpoints.length === 0) usage('--endpoints needs at least one host:port');
  const created: string[] = [];
  let client: TesseraClient | null = null;
  try {
    client = new TesseraClient({ endpoints, concurrentWritesMax: IN_FLIGHT });
    await waitForWrites(client);
    // Names of this run, so that a run against --endpoints finds no tables of an earlier one.
    const run = Date.now().toString(36);
    const makeTable = async (what: string, maxVersions = 1): Promise<Table> => {
      const name = `bench_${what}_${run}`;
      await client!.createTable({
        name,
        primaryKey: [
          { name: 'tenant', type: 'string' },
          { name: 'id', type: 'integer' },
        ],
        maxVersions,
      });
      created.push(name);
      return client!.table<Row, Key>(name);
    };
    const rows = await makeTable('rows');
    const load = await makeTable('load');
    const garbage = await makeTable('garbage', MAX_VERSIONS_LIMIT);
    // One write per table before any timed phase: the client learns each table's leader.
    for (const t of [rows, load, garbage]) await t.putRow(row('warm-up', 0, 0));
    process.stdout.write(
      `bench:tables  endpoints ${endpoints.join(',')}${cluster ? ' (local 3-node cluster)' : ''}` +
        `  ${seconds} s per phase\n`,
    );
    const ratio = (r: number, base: number): string => (base === 0 ? 'n/a' : `${fmt(r / base, 2)}`);

    const kv = await phase(seconds, IN_FLIGHT, (w, i) =>
      client!.put(`bench-${(w * 7919 + i) % KV_KEYS}`, KV_VALUE),
    );
    report('kv-put x64', kv, '   baseline', NAME_WIDTH);
    const base = kv.opsPerSec;
    const line = (name: string, r: PhaseResult, extra = ''): void =>
      report(name, r, `${extra}   x${ratio(r.opsPerSec, base)} kv-put`, NAME_WIDTH);

    // putRow of new rows; each worker remembers how many it wrote, for the gets.
    const written = new Array<number>(IN_FLIGHT).fill(0);
    const put = await phase(seconds, IN_FLIGHT, async (w, i) => {
      await rows.putRow(row(tenantOf(w), w * ID_STRIDE + i, i));
      written[w] = i + 1;
    });
    line('putRow x64', put);
    const someRow = (w: number, i: number): { tenant: string; id: bigint } => {
      // Another worker's row, spread over everything written.
      let v = (w * 7919 + i) % IN_FLIGHT;
      while (written[v] === 0) v = (v + 1) % IN_FLIGHT;
      return { tenant: tenantOf(v), id: BigInt(v * ID_STRIDE + ((i * 31) % written[v]!)) };
    };
    let missing = 0;
    const get = (serializable: boolean) => async (w: number, i: number) => {
      const r = await rows.getRow(
        someRow(w, i),
        serializable ? { consistency: 'serializable' } : {},
      );
      if (r === null) missing += 1;
    };
    const getLin = await phase(seconds, IN_FLIGHT, get(false));
    line('getRow-lin x64', getLin);
    const getSer = await phase(seconds, IN_FLIGHT, get(true));
    line('getRow-ser x64', getSer, missing > 0 ? `   ${missing} rows not found` : '');

    const scanLine = (name: string, s: Awaited<ReturnType<typeof scanPhase>>): void => {
      process.stdout.write(
        `${name.padEnd(NAME_WIDTH)} ${fmt(s.pages.opsPerSec, 0).padStart(8)} pages/s  ` +
          `${fmt(s.rowsPerSec, 0)} rows/s   page p50 ${fmt(s.pages.p50Ms, 2)} ms   ` +
          `p99 ${fmt(s.pages.p99Ms, 2)} ms   (${s.pages.ops} pages, ${s.rows} rows, ` +
          `${s.passes} full passes, ${s.pages.errors} errors)   ` +
          `x${ratio(s.rowsPerSec, base)} kv-put in rows\n`,
      );
    };
    const scan1 = await scanPhase(rows, seconds, 1);
    scanLine('scan x1', scan1);
    const scan8 = await scanPhase(rows, seconds, SCANNERS);
    scanLine(`scan x${SCANNERS}`, scan8);

    // The cost of garbage collection: the same put phase without and with GC at work.
    const putNoGc = await phase(seconds, IN_FLIGHT, (w, i) =>
      load.putRow(row(tenantOf(w), w * ID_STRIDE + i, i)),
    );
    line('put-nogc x64', putNoGc);
    const gcBefore = await gcRemoved(endpoints);
    const overwrite = await phase(
      OVERWRITE_PHASE_FACTOR * seconds,
      IN_FLIGHT,
      (w, i) => {
        const { tenant, id, ...cells } = row('tenant-0', w % GARBAGE_ROWS, i);
        return garbage.updateRow({ tenant, id }, { put: cells });
      },
      OVERWRITES_MAX,
    );
    await client.alterTable(garbage.name, { maxVersions: 1 });
    const alteredAt = performance.now();
    const gcAfterOverwrite = await gcRemoved(endpoints);
    line(
      'overwrite x64',
      overwrite,
      `   ${GARBAGE_ROWS} rows, then maxVersions 1; gc removed ` +
        `${fmt(gcAfterOverwrite - gcBefore)} meanwhile`,
    );
    // put-gc runs from the alter until the GC metric has settled, and counts the puts
    // that complete before its last growth (or in the first S seconds, if it did not grow).
    const quietPromise = waitForGcQuiet(endpoints);
    const settled = new AbortController();
    void quietPromise.then(() => settled.abort());
    const puts: { doneAtMs: number; latencyMs: number }[] = [];
    const putGcRun = await phase(
      GC_WAIT_MS_MAX / 1_000,
      IN_FLIGHT,
      async (w, i) => {
        const t0 = performance.now();
        await load.putRow(row(tenantOf(w), ID_STRIDE * IN_FLIGHT + w * ID_STRIDE + i, i));
        const t1 = performance.now();
        puts.push({ doneAtMs: t1, latencyMs: t1 - t0 });
      },
      PHASE_OPS_MAX,
      settled.signal,
    );
    const quiet = await quietPromise;
    const windowEnd = quiet.lastGrowthAtMs ?? alteredAt + seconds * 1_000;
    const putGc = { ...window(puts, alteredAt, windowEnd), errors: putGcRun.errors };
    const gcDuringPut = quiet.removed - gcAfterOverwrite;
    const putGcRatio =
      putNoGc.opsPerSec === 0 ? null : round(putGc.opsPerSec / putNoGc.opsPerSec, 3);
    line(
      quiet.lastGrowthAtMs === null ? 'put-gc x64 (no gc)' : 'put-gc x64',
      putGc,
      `   x${putGcRatio === null ? 'n/a' : fmt(putGcRatio, 2)} put-nogc, ` +
        `gc removed ${fmt(gcDuringPut)} meanwhile, ${fmt(putGc.elapsedS, 2)} s`,
    );
    const drainS =
      quiet.lastGrowthAtMs === null ? 0 : round((quiet.lastGrowthAtMs - alteredAt) / 1_000, 2);
    const removedAfter = quiet.removed - gcAfterOverwrite;
    const removedTotal = quiet.removed - gcBefore;
    const removedPerSec = drainS === 0 ? 0 : round(removedAfter / drainS, 1);
    process.stdout.write(
      `${'gc drain'.padEnd(NAME_WIDTH)} ${fmt(drainS, 2).padStart(8)} s from the alter ` +
        `to the last growth of the gc metric${quiet.settled ? '' : ' (still growing: gave up)'}` +
        `   ${fmt(removedAfter)} records removed since, ${fmt(removedPerSec, 0)} records/s` +
        `   (${fmt(removedTotal)} removed in all, ${endpoints.length} nodes summed)\n`,
    );

    const summary = {
      bench: 'tables',
      endpoints: endpoints.length,
      localCluster: cluster !== null,
      secondsPerPhase: seconds,
      inFlight: IN_FLIGHT,
      baseline: { kvPut: kv },
      putRow: { ...put, vsKvPut: vsKv(put.opsPerSec, base) },
      getRowLinearizable: { ...getLin, vsKvPut: vsKv(getLin.opsPerSec, base) },
      getRowSerializable: { ...getSer, vsKvPut: vsKv(getSer.opsPerSec, base), missing },
      scan: Object.fromEntries(
        (
          [
            ['scanners1', scan1],
            [`scanners${SCANNERS}`, scan8],
          ] as const
        ).map(([k, s]) => [
          k,
          {
            pageRows: SCAN_PAGE_ROWS,
            pagesPerSec: s.pages.opsPerSec,
            rowsPerSec: s.rowsPerSec,
            pages: s.pages.ops,
            rows: s.rows,
            fullPasses: s.passes,
            pageP50Ms: s.pages.p50Ms,
            pageP99Ms: s.pages.p99Ms,
            errors: s.pages.errors,
            rowsVsKvPut: vsKv(s.rowsPerSec, base),
          },
        ]),
      ),
      gc: {
        garbageRows: GARBAGE_ROWS,
        overwrite: { ...overwrite, gcRemovedMeanwhile: gcAfterOverwrite - gcBefore },
        putNoGc: { ...putNoGc, vsKvPut: vsKv(putNoGc.opsPerSec, base) },
        putDuringGc: {
          ...putGc,
          vsKvPut: vsKv(putGc.opsPerSec, base),
          gcRemovedMeanwhile: gcDuringPut,
        },
        putDuringGcVsNoGc: putGcRatio,
        drainSeconds: drainS,
        settled: quiet.settled,
        removedAfterOverwrite: removedAfter,
        removedPerSec,
        removedTotal,
      },
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    // A run against --endpoints leaves no tables behind; a local cluster goes away whole.
    if (cluster === null && client !== null) {
      for (const name of created) await client.dropTable(name).catch(() => undefined);
    }
    await cluster?.stop();
  }
}

await main();
