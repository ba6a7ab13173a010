/**
 * Append throughput and latency of the log engine behind the group
 * committer, against the disk's own fsync rate.
 *
 *   npx tsx bench/log-engine.bench.ts [--seconds S] [--fsync-seconds F]
 *                                     [--payload-bytes P] [--dir D]
 *
 * In a fresh temp directory under D (default the OS temp dir), removed at
 * the end:
 *
 * 1. Baseline: a loop of append + fdatasync on a temp file opened with
 *    O_APPEND (the syscalls NodeFileSystem issues), each write the size of
 *    one encoded log record holding one entry of P bytes (default 256), for
 *    F seconds (default 2): fsyncs/s and p50/p99 latency.
 * 2. For 1, 16 and 256 concurrent appenders, each with its own group
 *    (RangeId = appender number) and strictly increasing indexes, a fresh
 *    `LogEngine` on `NodeFileSystem` behind a `GroupCommitter` (default
 *    options); every appender loops `await committer.append(...)` of one
 *    entry for S seconds (default 3). Reported: appends/s, syncs/s (counted
 *    by wrapping the LogStorage's `sync`), fdatasyncs (counted by wrapping
 *    the file system), entries per sync, p50/p99 latency from `append` to
 *    its resolution, and the ratio appends/s / baseline fsyncs/s.
 *
 * Everything is bounded: S and F at most 60 s, at most 2,000,000 appends per
 * appender count (latencies go into a preallocated array of that size). The
 * last line is JSON for scripts:
 *
 *   {"baselineFsyncPerSec":..,"recordBytes":..,"results":[{"appenders":1,"appendsPerSec":..,...},...]}
 *
 * A benchmark, not a test: nothing is asserted about timing.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { intOption } from '../src/cli/args.ts';
import type { RangeId } from '../src/core/ids.ts';
import { logIndex, rangeId, term } from '../src/core/ids.ts';
import { NodeFileSystem } from '../src/node/fs.ts';
import { GroupCommitter } from '../src/node/group-commit.ts';
import type { Entry } from '../src/raft/types.ts';
import type { AppendFile } from '../src/storage/fs.ts';
import type { GroupState, GroupWrite, LogStorage } from '../src/storage/log-storage.ts';
import { LogEngine } from '../src/storage/wal/log-engine.ts';
import { encodeRecord } from '../src/storage/wal/record.ts';
import { quantile, fmt, round, fsType } from './report.ts';

const APPENDER_COUNTS: readonly number[] = [1, 16, 256];
const SECONDS_MAX = 60;
const PAYLOAD_BYTES_MAX = 1024 * 1024;
/** Most appends (and latency samples) per appender count. */
const APPENDS_MAX = 2_000_000;
/** Most baseline iterations (and latency samples). */
const BASELINE_SYNCS_MAX = 2_000_000;

interface Config {
  readonly seconds: number;
  readonly fsyncSeconds: number;
  readonly payloadBytes: number;
  readonly dir: string;
}

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: tsx bench/log-engine.bench.ts [--seconds S] [--fsync-seconds F] ` +
      `[--payload-bytes P] [--dir D]\n`,
  );
  process.exit(2);
}

function boundedInt(v: string | undefined, name: string, dflt: number, min: number, max: number) {
  const n = intOption(v, name, dflt, min, usage);
  if (n > max) usage(`--${name} must be <= ${max}`);
  return n;
}

function parseConfig(): Config {
  let values;
  try {
    values = parseArgs({
      options: {
        seconds: { type: 'string' },
        'fsync-seconds': { type: 'string' },
        'payload-bytes': { type: 'string' },
        dir: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  return {
    seconds: boundedInt(values.seconds, 'seconds', 3, 1, SECONDS_MAX),
    fsyncSeconds: boundedInt(values['fsync-seconds'], 'fsync-seconds', 2, 1, SECONDS_MAX),
    payloadBytes: boundedInt(values['payload-bytes'], 'payload-bytes', 256, 0, PAYLOAD_BYTES_MAX),
    dir: values.dir ?? tmpdir(),
  };
}

function entryAt(index: number, payload: Uint8Array): Entry {
  return { term: term(1), index: logIndex(index), type: 'normal', data: payload };
}

interface BaselineResult {
  readonly syncs: number;
  readonly fsyncPerSec: number;
  /** Sorted latencies of write + fdatasync, in ms. */
  readonly latenciesMs: Float64Array;
}

/** Appends `record` and fdatasyncs, in a loop, for `seconds` (bounded by BASELINE_SYNCS_MAX). */
function baseline(dir: string, record: Uint8Array, seconds: number): BaselineResult {
  const fd = openSync(join(dir, 'fsync-probe'), 'a');
  const lat = new Float64Array(BASELINE_SYNCS_MAX);
  let n = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  try {
    while (n < BASELINE_SYNCS_MAX) {
      const s0 = performance.now();
      if (s0 >= deadline) break;
      let done = 0;
      while (done < record.length) done += writeSync(fd, record, done, record.length - done);
      fdatasyncSync(fd);
      lat[n++] = performance.now() - s0;
    }
  } finally {
    closeSync(fd);
  }
  const wallS = (performance.now() - t0) / 1000;
  return { syncs: n, fsyncPerSec: n / wallS, latenciesMs: lat.slice(0, n).sort() };
}

/** NodeFileSystem counting file fdatasyncs and directory fsyncs. */
class CountingFileSystem extends NodeFileSystem {
  fileSyncs = 0;
  dirSyncs = 0;

  override openAppend(path: string): AppendFile {
    const file = super.openAppend(path);
    const onSync = (): void => void this.fileSyncs++;
    return {
      path: file.path,
      append: (data) => file.append(data),
      fsync: () => {
        file.fsync();
        onSync();
      },
      size: () => file.size(),
      close: () => file.close(),
    };
  }

  override fsyncDir(dir: string): void {
    super.fsyncDir(dir);
    this.dirSyncs++;
  }
}

/** A LogStorage that counts the syncs it passes on. */
class CountingStorage implements LogStorage {
  syncs = 0;
  constructor(private readonly inner: LogStorage) {}
  write(writes: readonly GroupWrite[]): void {
    this.inner.write(writes);
  }
  sync(): void {
    this.inner.sync();
    this.syncs++;
  }
  groups(): RangeId[] {
    return this.inner.groups();
  }
  load(group: RangeId): GroupState {
    return this.inner.load(group);
  }
  compact(group: RangeId, index: number): void {
    this.inner.compact(group, index);
  }
  close(): void {
    this.inner.close();
  }
}

interface RunResult {
  readonly appenders: number;
  readonly appends: number;
  readonly wallMs: number;
  readonly syncs: number;
  readonly fileSyncs: number;
  /** Sorted latencies from append() to its resolution, in ms. */
  readonly latenciesMs: Float64Array;
}

/** `appenders` concurrent loops of one-entry appends, each on its own group, for `seconds`. */
async function runAppenders(
  root: string,
  appenders: number,
  seconds: number,
  payload: Uint8Array,
): Promise<RunResult> {
  const dir = join(root, `log-${appenders}`);
  const fs = new CountingFileSystem();
  fs.mkdirp(dir);
  const engine = LogEngine.open(fs, dir);
  const storage = new CountingStorage(engine);
  const committer = new GroupCommitter(storage);
  const lat = new Float64Array(APPENDS_MAX);
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const appender = async (group: RangeId): Promise<void> => {
    for (let index = 1; started < APPENDS_MAX && performance.now() < deadline; index++) {
      started++;
      const entry = entryAt(index, payload);
      const a0 = performance.now();
      await committer.append([{ group, entries: [entry] }]);
      lat[done++] = performance.now() - a0;
    }
  };
  const syncsBefore = storage.syncs;
  const fileSyncsBefore = fs.fileSyncs;
  try {
    const loops: Promise<void>[] = [];
    for (let a = 1; a <= appenders; a++) loops.push(appender(rangeId(a)));
    await Promise.all(loops);
    const wallMs = performance.now() - t0;
    await committer.close();
    return {
      appenders,
      appends: done,
      wallMs,
      syncs: storage.syncs - syncsBefore,
      fileSyncs: fs.fileSyncs - fileSyncsBefore,
      latenciesMs: lat.slice(0, done).sort(),
    };
  } finally {
    engine.close();
  }
}

const out = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const cfg = parseConfig();
  const payload = new Uint8Array(cfg.payloadBytes).fill(0x76);
  const record = encodeRecord({ type: 'entry', group: rangeId(1), entry: entryAt(1, payload) });
  const root = mkdtempSync(join(cfg.dir, 'tessera-log-bench-'));
  try {
    out(
      `bench:log-engine: ${cfg.payloadBytes} B entries (${record.length} B records), ` +
        `${cfg.seconds} s per run, appenders ${APPENDER_COUNTS.join('/')}, dir ${root}, ` +
        `node ${process.version}`,
    );
    out(`  file system        ${fsType(root)}`);
    const base = baseline(root, record, cfg.fsyncSeconds);
    const bl = base.latenciesMs;
    out(
      `  fsync baseline     ${fmt(base.fsyncPerSec)} fsync/s (${record.length} B append + ` +
        `fdatasync, ${cfg.fsyncSeconds} s), p50 ${fmt(quantile(bl, 0.5), 3)} ms, ` +
        `p99 ${fmt(quantile(bl, 0.99), 3)} ms`,
    );
    const results = [];
    for (const appenders of APPENDER_COUNTS) {
      const r = await runAppenders(root, appenders, cfg.seconds, payload);
      const wallS = r.wallMs / 1000;
      const appendsPerSec = r.appends / wallS;
      const syncsPerSec = r.syncs / wallS;
      const entriesPerSync = r.syncs === 0 ? 0 : r.appends / r.syncs;
      const ratio = appendsPerSec / base.fsyncPerSec;
      const p50 = quantile(r.latenciesMs, 0.5);
      const p99 = quantile(r.latenciesMs, 0.99);
      out(
        `  ${String(appenders).padStart(3)} appenders      ${fmt(appendsPerSec)} appends/s, ` +
          `${fmt(syncsPerSec)} syncs/s (${fmt(r.fileSyncs)} fdatasyncs), ` +
          `${fmt(entriesPerSync, 1)} entries/sync, p50 ${fmt(p50, 3)} ms, p99 ${fmt(p99, 3)} ms, ` +
          `ratio ${fmt(ratio, 2)}`,
      );
      results.push({
        appenders,
        appends: r.appends,
        wallMs: round(r.wallMs, 1),
        appendsPerSec: round(appendsPerSec, 1),
        syncsPerSec: round(syncsPerSec, 1),
        entriesPerSync: round(entriesPerSync, 2),
        p50Ms: round(p50, 3),
        p99Ms: round(p99, 3),
        ratio: round(ratio, 3),
      });
    }
    out(
      JSON.stringify({
        baselineFsyncPerSec: round(base.fsyncPerSec, 1),
        baselineP50Ms: round(quantile(bl, 0.5), 3),
        baselineP99Ms: round(quantile(bl, 0.99), 3),
        recordBytes: record.length,
        payloadBytes: cfg.payloadBytes,
        seconds: cfg.seconds,
        results,
      }),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
