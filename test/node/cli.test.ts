import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../support/local-cluster.ts';

const cli = fileURLToPath(new URL('../../src/cli/tessera.ts', import.meta.url));

test('tessera start reads its options from a config file and stops on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
  try {
    const [raft, http] = (await freePorts(2)) as [number, number];
    const config = join(dir, 'node.json');
    writeFileSync(
      config,
      JSON.stringify({
        id: 1,
        dir: join(dir, 'n1'),
        cluster: 'solo',
        members: `1=127.0.0.1:${raft}/127.0.0.1:${http}`,
      }),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start', '--config', config], {
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      let role = '';
      for (let i = 0; i < 100 && role !== 'leader'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        try {
          const res = await fetch(`http://127.0.0.1:${http}/v1/status`);
          role = ((await res.json()) as { role: string }).role;
        } catch {
          // Not listening yet.
        }
      }
      assert.equal(role, 'leader', 'a one-member cluster elects itself');
      child.kill('SIGTERM');
      assert.equal(await exited, 0, 'a clean stop on SIGTERM');
    } finally {
      child.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tessera start refuses a missing config file with a clear error', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', cli, 'start', '--config', '/nonexistent/x.json'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.notEqual(code, 0);
  assert.match(err, /--config \/nonexistent\/x\.json: ENOENT/);
});
