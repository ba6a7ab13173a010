/**
 * `npm run crash-test -- --cycles N [--dir DIR] [--writers W] [--keys K] [--bug ack-on-propose]`
 *
 * Starts a single-node Tessera process on the real disk, drives a concurrent
 * write load through it, kills it with SIGKILL at a random moment (often in
 * the middle of an fsync), restarts it, and verifies after every restart:
 * - every acknowledged write is present, with its value (lost = 0);
 * - no write is applied twice, and each writer's writes appear in order
 *   (writes are appends of unique tokens, which are not idempotent);
 * - the log and the state agree (after recovery everything committed is
 *   applied, and the state's applied index is within the log).
 * Unacknowledged writes are retried after the restart with the same session
 * sequence number; exactly-once sessions must apply them at most once.
 *
 * `--bug ack-on-propose` is the canary: the node acknowledges writes before
 * they are durable, and the test must report lost writes.
 *
 * Last line: `crash-test: cycles=N acked=A lost=L corrupt=C`; exits 0 if and
 * only if L and C are 0. Only the processes it started are killed, by pid.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

interface Write {
  readonly client: number;
  readonly seq: number;
  readonly key: string;
  readonly token: string;
  acked: boolean;
}

/** Bounds on one cycle (wall-clock ms): load before the kill, and waiting for answers. */
const KILL_AFTER_MIN_MS = 30;
const KILL_AFTER_MAX_MS = 400;
const REQUEST_TIMEOUT_MS = 10_000;

class NodeProcess {
  private readonly child: ChildProcess;
  private readonly waiters = new Map<number, (v: Record<string, unknown> | null) => void>();
  private nextId = 1;
  readonly ready: Promise<Record<string, unknown>>;
  exited = false;

  constructor(script: string, dir: string, bug: string | undefined) {
    const args = [
      '--import',
      'tsx',
      script,
      '--dir',
      dir,
      ...(bug === undefined ? [] : ['--bug', bug]),
    ];
    this.child = spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.child.on('exit', () => {
      this.exited = true;
      // Requests in flight die with the process: their outcome is unknown.
      const waiting = [...this.waiters.values()];
      this.waiters.clear();
      for (const w of waiting) w(null);
    });
    this.child.stdin!.on('error', () => {}); // Writes to a killed process fail; that is expected.
    let onReady: (v: Record<string, unknown>) => void = () => {};
    this.ready = new Promise((resolve) => (onReady = resolve));
    const rl = createInterface({ input: this.child.stdout! });
    rl.on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (msg.ready === true) onReady(msg);
      const id = msg.id as number | undefined;
      if (id === undefined) return;
      const w = this.waiters.get(id);
      this.waiters.delete(id);
      w?.(msg);
    });
  }

  /** Sends a request; resolves with the answer, or null if the process dies or time runs out. */
  request(body: Record<string, unknown>): Promise<Record<string, unknown> | null> {
    if (this.exited) return Promise.resolve(null);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(null);
      }, REQUEST_TIMEOUT_MS);
      this.waiters.set(id, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
      this.child.stdin!.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  kill(): Promise<void> {
    return new Promise((resolve) => {
      if (this.exited) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cycles: { type: 'string' },
      dir: { type: 'string' },
      writers: { type: 'string' },
      keys: { type: 'string' },
      bug: { type: 'string' },
    },
  });
  const bug = values.bug;
  if (bug !== undefined && bug !== 'ack-on-propose') {
    process.stderr.write(`unknown bug '${bug}' (known: ack-on-propose)\n`);
    process.exit(2);
  }
  const cycles = Number(values.cycles ?? '10');
  const writers = Number(values.writers ?? '8');
  const keys = Number(values.keys ?? '4');
  if (![cycles, writers, keys].every((n) => Number.isInteger(n) && n > 0)) {
    process.stderr.write(
      'usage: npm run crash-test -- --cycles N [--dir DIR] [--writers W] [--keys K]\n',
    );
    process.exit(2);
  }
  const ownDir = values.dir === undefined;
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'tessera-crash-'));
  const script = fileURLToPath(new URL('../node/single-node.ts', import.meta.url));

  const writes: Write[] = [];
  const seqOf = new Map<number, number>();
  let lost = 0;
  let corrupt = 0;
  const problem = (kind: 'lost' | 'corrupt', msg: string): void => {
    if (kind === 'lost') lost++;
    else corrupt++;
    process.stdout.write(`  ${kind}: ${msg}\n`);
  };

  const verify = async (node: NodeProcess, cycle: number): Promise<void> => {
    const status = await node.request({ op: 'status' });
    const dump = await node.request({ op: 'dump' });
    if (status === null || dump === null) {
      problem('corrupt', `cycle ${cycle}: the restarted node did not answer`);
      return;
    }
    const applied = status.applied as number;
    const commit = status.commit as number;
    const lastIndex = status.lastIndex as number;
    const stateApplied = status.stateApplied as number;
    if (!(stateApplied <= lastIndex && applied <= commit && commit <= lastIndex)) {
      problem(
        'corrupt',
        `cycle ${cycle}: log and state disagree (stateApplied=${stateApplied} applied=${applied} commit=${commit} lastIndex=${lastIndex})`,
      );
    }
    const data = dump.data as Record<string, string>;
    const byKey = new Map<string, string[]>();
    for (const [k, v] of Object.entries(data))
      byKey.set(
        k,
        v.split(';').filter((t) => t !== ''),
      );
    const seen = new Set<string>();
    for (const [k, tokens] of byKey) {
      const lastSeq = new Map<number, number>();
      for (const t of tokens) {
        if (seen.has(t)) problem('corrupt', `cycle ${cycle}: token ${t} applied twice (key ${k})`);
        seen.add(t);
        const [c, s] = t.split('.').map(Number) as [number, number];
        if ((lastSeq.get(c) ?? 0) > s)
          problem('corrupt', `cycle ${cycle}: writer ${c} out of order at ${t}`);
        lastSeq.set(c, s);
      }
    }
    for (const w of writes) {
      if (w.acked && !(byKey.get(w.key) ?? []).includes(w.token)) {
        problem('lost', `cycle ${cycle}: acknowledged write ${w.token} to ${w.key} is missing`);
      }
    }
  };

  const writer = async (node: NodeProcess, client: number, stop: () => boolean): Promise<void> => {
    // Retry this writer's unacknowledged writes first, with their original sequence numbers.
    for (const w of writes.filter((x) => x.client === client && !x.acked)) {
      if (stop()) return;
      const r = await node.request({
        op: 'append',
        client,
        seq: w.seq,
        key: w.key,
        value: `${w.token};`,
      });
      if (r?.ok === true) w.acked = true;
      else return;
    }
    while (!stop()) {
      const seq = (seqOf.get(client) ?? 0) + 1;
      seqOf.set(client, seq);
      const w: Write = {
        client,
        seq,
        key: `k${(client + seq) % keys}`,
        token: `${client}.${seq}`,
        acked: false,
      };
      writes.push(w);
      const r = await node.request({ op: 'append', client, seq, key: w.key, value: `${w.token};` });
      if (r?.ok === true) w.acked = true;
      else return;
    }
  };

  try {
    for (let cycle = 1; cycle <= cycles; cycle++) {
      const node = new NodeProcess(script, dir, bug);
      await node.ready;
      if (cycle > 1) await verify(node, cycle);
      let stopped = false;
      const load = Array.from({ length: writers }, (_, i) => writer(node, i + 1, () => stopped));
      const killAfter = KILL_AFTER_MIN_MS + Math.random() * (KILL_AFTER_MAX_MS - KILL_AFTER_MIN_MS);
      await new Promise((r) => setTimeout(r, killAfter));
      stopped = true;
      await node.kill();
      await Promise.all(load);
      const acked = writes.filter((w) => w.acked).length;
      process.stdout.write(
        `cycle ${cycle}: killed after ${killAfter.toFixed(0)}ms, acked so far ${acked}\n`,
      );
    }
    // A last restart to verify the final kill.
    const node = new NodeProcess(script, dir, bug);
    await node.ready;
    await verify(node, cycles + 1);
    await node.kill();
  } finally {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  }
  const acked = writes.filter((w) => w.acked).length;
  process.stdout.write(
    `crash-test: cycles=${cycles} acked=${acked} lost=${lost} corrupt=${corrupt}\n`,
  );
  process.exitCode = lost === 0 && corrupt === 0 ? 0 : 1;
}

await main();
