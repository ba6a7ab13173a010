/**
 * A local Tessera cluster for the benchmarks that run through the client:
 * three `tessera start` processes on free loopback ports in a temp dir,
 * started and killed by the benchmark itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { TesseraClient } from '../src/client/client.ts';
import { freePorts } from '../src/node/ports.ts';

const CLI = fileURLToPath(new URL('../src/cli/tessera.ts', import.meta.url));
/** How long {@link waitForWrites} waits for a leader, in ms. */
const LEADER_WAIT_MS = 30_000;

/** A running local cluster: its HTTP endpoints (host:port) and how to tear it down. */
export interface LocalCluster {
  readonly endpoints: readonly string[];
  /** Kills the three processes this cluster started (by their handles) and removes the temp dir. */
  stop(): Promise<void>;
}

/**
 * Starts a 3-node cluster named `name` in a fresh temp dir; node stderr is
 * passed through. Resolves once the processes are spawned, not once a
 * leader exists: see {@link waitForWrites}.
 */
export async function startCluster(name: string): Promise<LocalCluster> {
  const root = mkdtempSync(join(tmpdir(), `tessera-${name}-`));
  const ports = await freePorts(6);
  const members = [1, 2, 3]
    .map((id, i) => `${id}=127.0.0.1:${ports[2 * i]}/127.0.0.1:${ports[2 * i + 1]}`)
    .join(',');
  const procs: ChildProcess[] = [1, 2, 3].map((id) =>
    spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'start', '--id', String(id), '--dir', join(root, `n${id}`)].concat([
        '--cluster',
        name,
        '--members',
        members,
      ]),
      { stdio: ['ignore', 'ignore', 'inherit'] },
    ),
  );
  const stop = async (): Promise<void> => {
    await Promise.all(
      procs.map((p) => {
        if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
        const exited = new Promise((resolve) => p.once('exit', resolve));
        p.kill('SIGKILL');
        return exited;
      }),
    );
    rmSync(root, { recursive: true, force: true });
  };
  return { endpoints: [1, 3, 5].map((i) => `127.0.0.1:${ports[i]}`), stop };
}

/** Waits until a key-value write goes through (a leader exists); bounded by LEADER_WAIT_MS. */
export async function waitForWrites(client: TesseraClient): Promise<void> {
  const deadline = performance.now() + LEADER_WAIT_MS;
  for (;;) {
    try {
      await client.put('bench-ready', 'yes', { deadlineMs: 5_000 });
      return;
    } catch (e) {
      if (performance.now() > deadline) throw e;
    }
  }
}
