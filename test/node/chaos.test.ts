/**
 * The chaos tester end to end: a 20 s run of `src/cli/chaos.ts` against a real
 * 3-node cluster with every nemesis must report no violation and no lost
 * write, and write a well-formed history that includes table rows. Canary:
 * the same checker must flag that history once one successful read is
 * tampered with. Also checks the fault proxy on its own. Every wait is
 * bounded; temp dirs are removed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { KvOperation } from '../../src/check/history.ts';
import { checkHistory } from '../../src/cli/chaos.ts';
import { FaultProxy } from '../../src/node/fault-proxy.ts';

const CHAOS = fileURLToPath(new URL('../../src/cli/chaos.ts', import.meta.url));
const RUN_TIMEOUT_MS = 180_000;
const FIELDS = ['call', 'client', 'expect', 'key', 'ok', 'op', 'output', 'return', 'value'];

const root = mkdtempSync(join(tmpdir(), 'tessera-chaos-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs the chaos CLI as a child; kills it (by pid) if it outlives `timeoutMs`. */
function runChaos(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHAOS, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    // SIGINT first: the CLI then stops its own nodes.
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    const hard = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      clearTimeout(hard);
      resolve({ code, out });
    });
  });
}

function readJsonl(path: string): KvOperation[] {
  const text = readFileSync(path, 'utf8');
  assert.ok(text.endsWith('\n'), `${path} ends with a newline`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line, i) => {
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.deepEqual(Object.keys(o).sort(), FIELDS, `line ${i + 1}: ${line}`);
      assert.ok(Number.isInteger(o.client), line);
      assert.ok(['put', 'get', 'delete', 'cas'].includes(o.op as string), line);
      assert.equal(typeof o.key, 'string', line);
      assert.ok(o.value === null || typeof o.value === 'string', line);
      assert.ok(o.expect === null || typeof o.expect === 'string', line);
      assert.ok(o.output === null || typeof o.output === 'string', line);
      assert.ok(typeof o.call === 'number' && o.call >= 0, line);
      assert.ok(o.return === null || (typeof o.return === 'number' && o.return >= o.call), line);
      assert.ok(o.ok === null || typeof o.ok === 'boolean', line);
      if (o.ok === null) assert.equal(o.return, null, `unknown outcome has no return: ${line}`);
      return o as unknown as KvOperation;
    });
}

test('fault proxy forwards, cuts (existing and new connections) and heals', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const proxy = new FaultProxy({
    host: '127.0.0.1',
    port: (echo.address() as net.AddressInfo).port,
  });
  const port = await proxy.listen();
  const roundTrip = (): Promise<string> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('ping'));
      const timer = setTimeout(() => (s.destroy(), resolve('timeout')), 2_000);
      s.on('data', (d) => (clearTimeout(timer), s.destroy(), resolve(d.toString())));
      s.on('error', () => (clearTimeout(timer), resolve('error')));
      s.on('close', () => (clearTimeout(timer), resolve('closed')));
    });
  try {
    assert.equal(await roundTrip(), 'ping');
    const held = net.connect(port, '127.0.0.1');
    held.on('error', () => {});
    await new Promise((r) => held.once('connect', r));
    const closed = new Promise((r) => held.once('close', r));
    for (let i = 0; i < 50 && proxy.connections === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    proxy.cut();
    await closed; // An existing connection is destroyed.
    assert.notEqual(await roundTrip(), 'ping'); // New ones are refused.
    proxy.heal();
    assert.equal(await roundTrip(), 'ping');
  } finally {
    await proxy.close();
    await new Promise((r) => echo.close(r));
  }
});

test(
  'chaos run with kill, pause and partition: no violation, no lost write',
  { timeout: RUN_TIMEOUT_MS + 30_000 },
  async () => {
    const out = join(root, 'run');
    const args = [
      '--nodes',
      '3',
      '--duration',
      '60',
      '--nemesis',
      'kill,pause,partition',
      '--out',
      out,
    ];
    const { code, out: output } = await runChaos(args, RUN_TIMEOUT_MS);
    const lines = output.trimEnd().split('\n');
    const last = lines.at(-1) ?? '';
    assert.match(last, /^chaos: ops=\d+ unknown=\d+ violations=0 lost=0$/, output);
    assert.equal(code, 0, output);
    const ops = Number(/ops=(\d+)/.exec(last)![1]);
    assert.ok(ops > 50, `only ${ops} operations`);

    const history = readJsonl(join(out, 'history.jsonl'));
    const finals = readJsonl(join(out, 'final-reads.jsonl'));
    assert.equal(history.length, ops);
    // Table rows are part of the workload and of the final reads.
    assert.ok(
      history.some((o) => o.key.startsWith('row:') && o.op === 'cas' && o.ok === true),
      'no row operation (with a swapped cas) in the history',
    );
    assert.ok(
      finals.some((o) => o.key.startsWith('row:')),
      'no row in the final reads',
    );
    const clean = checkHistory(history, finals);
    assert.equal(clean.violations, 0, clean.message);
    assert.equal(clean.lost, 0, clean.message);

    // Canary: one successful read of a value nobody wrote must be flagged.
    const i = history.findIndex((o) => o.op === 'get' && o.ok === true);
    assert.ok(i >= 0, 'no successful get in the history');
    const tampered = history.map((o, j) => (j === i ? { ...o, output: 'never-written' } : o));
    const v = checkHistory(tampered, finals);
    assert.ok(v.violations >= 1, 'the checker missed a tampered read');
    assert.ok(v.badKeys.includes(history[i]!.key));

    // Canary: a final read that lost the last acknowledged write must be flagged.
    const lastPut = [...history].reverse().find((o) => o.op === 'put' && o.ok === true);
    assert.ok(lastPut !== undefined);
    const stale = finals.map((f) =>
      f.key === lastPut.key ? { ...f, output: 'never-written' } : f,
    );
    assert.ok(checkHistory(history, stale).lost >= 1, 'the checker missed a lost write');
  },
);
