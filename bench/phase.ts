/**
 * A timed load phase of the client benchmarks: N loops, each with one
 * operation in flight, and the line that reports what it measured.
 */
import { performance } from 'node:perf_hooks';
import { fmt, quantile, round } from './report.ts';

/** Operations one phase completes at most (all loops together), whatever its duration. */
export const PHASE_OPS_MAX = 1_000_000;

/** What one phase measured. */
export interface PhaseResult {
  /** Operations that succeeded. */
  readonly ops: number;
  /** Operations that failed (thrown); not in the latencies. */
  readonly errors: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Wall time of the phase, in seconds. */
  readonly elapsedS: number;
}

/**
 * Runs `workers` loops of `op` for `seconds`, until `opsMax` operations
 * have started, or until `stop` is aborted, whichever comes first; each
 * loop waits for its operation before starting the next. Returns counts and
 * latency quantiles.
 */
export async function phase(
  seconds: number,
  workers: number,
  op: (worker: number, i: number) => Promise<unknown>,
  opsMax = PHASE_OPS_MAX,
  stop?: AbortSignal,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  let errors = 0;
  let started = 0;
  const start = performance.now();
  const end = start + seconds * 1_000;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; performance.now() < end && started < opsMax && stop?.aborted !== true; i++) {
        started += 1;
        const t0 = performance.now();
        try {
          await op(w, i);
          latencies.push(performance.now() - t0);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  const elapsedS = (performance.now() - start) / 1_000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    ops: latencies.length,
    errors,
    opsPerSec: round(latencies.length / elapsedS, 1),
    p50Ms: round(quantile(sorted, 0.5), 2),
    p99Ms: round(quantile(sorted, 0.99), 2),
    elapsedS: round(elapsedS, 3),
  };
}

/**
 * Prints one phase as a line: name (padded to `nameWidth`), ops/s, p50,
 * p99, counts, and `extra` at the end.
 */
export function report(name: string, r: PhaseResult, extra = '', nameWidth = 12): void {
  process.stdout.write(
    `${name.padEnd(nameWidth)} ${fmt(r.opsPerSec, 0).padStart(8)} ops/s   p50 ${fmt(r.p50Ms, 2)} ms   ` +
      `p99 ${fmt(r.p99Ms, 2)} ms   (${r.ops} ops, ${r.errors} errors)${extra}\n`,
  );
}

/** The `--seconds` option of a benchmark: default 3, a number in (0, 3600]; else `usage` exits. */
export function secondsOption(text: string | undefined, usage: (message: string) => never): number {
  const seconds = Number(text ?? '3');
  if (!(Number.isFinite(seconds) && seconds > 0 && seconds <= 3_600)) {
    usage('--seconds must be a number in (0, 3600]');
  }
  return seconds;
}
