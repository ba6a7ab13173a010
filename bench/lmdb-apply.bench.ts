/**
 * Apply throughput of the LMDB state engine against the disk's own fsync rate.
 *
 *   npx tsx bench/lmdb-apply.bench.ts [--batches N] [--puts P] [--value-bytes V]
 *                                     [--keys K] [--fsync-seconds S] [--dir D]
 *
 * Commits N batches (default 20,000) of P puts (default 10) of V-byte values
 * (default 100) to one range, each with its applied position, through
 * `LmdbStateEngine.commit` (one durable LMDB transaction per batch), in a
 * fresh temp directory under D (default the OS temp dir). Keys are 16 bytes,
 * drawn from K distinct keys (default 100,000) by a fixed-seed generator, so
 * the run mixes inserts and overwrites and never varies.
 *
 * Baseline in the same run and the same directory: a loop of 4 KiB append +
 * fsync on a temp file for S seconds (default 2). An LMDB commit waits for
 * two flushes (data pages, then the meta page), so a ratio near 0.5 of the
 * fsync rate means the engine is disk-bound, as it should be. The last line
 * is JSON for scripts:
 *
 *   {"batches":..,"batchesPerSec":..,"putsPerSec":..,"fsyncPerSec":..,"ratio":..,...}
 *
 * A benchmark, not a test: nothing is asserted about timing.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { logIndex, nodeId, rangeId, term } from '../src/core/ids.ts';
import { SeededRng } from '../src/core/rng.ts';
import type { SnapshotMeta } from '../src/raft/types.ts';
import { LmdbStateEngine } from '../src/storage/engine/lmdb-state-engine.ts';
import { intOption } from '../src/cli/args.ts';
import { quantile, fmt, round, fsType } from './report.ts';

const RANGE = rangeId(1);
const KEY_BYTES = 16;
const FSYNC_WRITE_BYTES = 4096;
const SEED = 42;

interface Config {
  readonly batches: number;
  readonly puts: number;
  readonly valueBytes: number;
  readonly keys: number;
  readonly fsyncSeconds: number;
  readonly dir: string;
}

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: tsx bench/lmdb-apply.bench.ts [--batches N] [--puts P] ` +
      `[--value-bytes V] [--keys K] [--fsync-seconds S] [--dir D]\n`,
  );
  process.exit(2);
}

function intArg(v: string | undefined, name: string, dflt: number, min: number): number {
  return intOption(v, name, dflt, min, usage);
}

function parseConfig(): Config {
  let values;
  try {
    values = parseArgs({
      options: {
        batches: { type: 'string' },
        puts: { type: 'string' },
        'value-bytes': { type: 'string' },
        keys: { type: 'string' },
        'fsync-seconds': { type: 'string' },
        dir: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  return {
    batches: intArg(values.batches, 'batches', 20_000, 1),
    puts: intArg(values.puts, 'puts', 10, 0),
    valueBytes: intArg(values['value-bytes'], 'value-bytes', 100, 0),
    keys: intArg(values.keys, 'keys', 100_000, 1),
    fsyncSeconds: intArg(values['fsync-seconds'], 'fsync-seconds', 2, 1),
    dir: values.dir ?? tmpdir(),
  };
}

/** Appends 4 KiB and fsyncs, in a loop, for `seconds`; returns fsyncs per second. */
function fsyncRate(dir: string, seconds: number): number {
  const fd = openSync(join(dir, 'fsync-probe'), 'w');
  const block = new Uint8Array(FSYNC_WRITE_BYTES).fill(0xa5);
  let n = 0;
  const t0 = performance.now();
  try {
    while (performance.now() - t0 < seconds * 1000) {
      writeSync(fd, block);
      fsyncSync(fd);
      n++;
    }
  } finally {
    closeSync(fd);
  }
  return n / ((performance.now() - t0) / 1000);
}

function appliedAt(index: number): SnapshotMeta {
  return {
    index: logIndex(index),
    term: term(1),
    conf: { voters: [nodeId(1), nodeId(2), nodeId(3)], votersOutgoing: [], learners: [] },
  };
}

/** Key number `n` as 16 bytes (big-endian in the last 4, a fixed pattern before). */
function keyBytes(n: number): Uint8Array {
  const key = new Uint8Array(KEY_BYTES).fill(0x6b);
  new DataView(key.buffer).setUint32(KEY_BYTES - 4, n, false);
  return key;
}

interface ApplyResult {
  readonly wallMs: number;
  /** Per-batch commit latencies in ms, sorted. */
  readonly latenciesMs: number[];
}

/** Commits the configured batches through a fresh LmdbStateEngine in `dir`. */
function applyBatches(cfg: Config, dir: string): ApplyResult {
  const engine = LmdbStateEngine.open(join(dir, 'state'));
  const rng = new SeededRng(SEED);
  const value = new Uint8Array(cfg.valueBytes).fill(0x76);
  const latenciesMs: number[] = [];
  try {
    const t0 = performance.now();
    for (let b = 1; b <= cfg.batches; b++) {
      const puts: Array<[Uint8Array, Uint8Array]> = [];
      for (let i = 0; i < cfg.puts; i++) puts.push([keyBytes(rng.int(0, cfg.keys - 1)), value]);
      const c0 = performance.now();
      engine.commit({ range: RANGE, puts, deletes: [], applied: appliedAt(b) });
      latenciesMs.push(performance.now() - c0);
    }
    const wallMs = performance.now() - t0;
    return { wallMs, latenciesMs: latenciesMs.sort((x, y) => x - y) };
  } finally {
    engine.close();
  }
}

function report(cfg: Config, filesystem: string, fsyncPerSec: number, r: ApplyResult): void {
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const wallS = r.wallMs / 1000;
  const batchesPerSec = cfg.batches / wallS;
  const putsPerSec = (cfg.batches * cfg.puts) / wallS;
  const ratio = batchesPerSec / fsyncPerSec;
  const lat = r.latenciesMs;
  out(`  file system        ${filesystem}`);
  out(
    `  fsync baseline     ${fmt(fsyncPerSec)} fsync/s (4 KiB append + fsync, ${cfg.fsyncSeconds} s)`,
  );
  out(`  wall time          ${fmt(wallS, 2)} s for ${fmt(cfg.batches)} batches`);
  out(`  batches/s          ${fmt(batchesPerSec)}`);
  out(`  puts/s             ${fmt(putsPerSec)}`);
  out(
    `  commit latency     p50 ${fmt(quantile(lat, 0.5), 3)} ms, p99 ${fmt(quantile(lat, 0.99), 3)} ms, ` +
      `max ${fmt(quantile(lat, 1), 3)} ms`,
  );
  out(`  ratio              ${fmt(ratio, 3)} batches per fsync of the baseline`);
  out(
    JSON.stringify({
      batches: cfg.batches,
      putsPerBatch: cfg.puts,
      valueBytes: cfg.valueBytes,
      wallMs: round(r.wallMs, 1),
      batchesPerSec: round(batchesPerSec, 1),
      putsPerSec: round(putsPerSec, 1),
      commitP50Ms: round(quantile(lat, 0.5), 3),
      commitP99Ms: round(quantile(lat, 0.99), 3),
      fsyncPerSec: round(fsyncPerSec, 1),
      ratio: round(ratio, 3),
      fileSystem: filesystem,
    }),
  );
}

function main(): void {
  const cfg = parseConfig();
  const dir = mkdtempSync(join(cfg.dir, 'tessera-lmdb-bench-'));
  try {
    const filesystem = fsType(dir);
    process.stdout.write(
      `bench:lmdb-apply: ${fmt(cfg.batches)} batches x ${cfg.puts} puts x ${cfg.valueBytes} B values, ` +
        `${fmt(cfg.keys)} keys, dir ${dir}, node ${process.version}\n`,
    );
    const fsyncPerSec = fsyncRate(dir, cfg.fsyncSeconds);
    const result = applyBatches(cfg, dir);
    report(cfg, filesystem, fsyncPerSec, result);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
