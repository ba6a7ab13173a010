/**
 * The etcd baseline of `bench:kv`: a local 3-member etcd cluster (the
 * `/usr/bin/etcd` of Debian's `etcd-server`, 3.4) on free loopback ports,
 * data in a temp dir, default fsync behaviour, spoken to through its v3
 * JSON gateway with the same global fetch the Tessera client uses.
 *
 * Requests go to the member that was leader when the cluster came up
 * (the Tessera client also talks to the leader it finds).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export const ETCD_BIN = '/usr/bin/etcd';
const LEADER_WAIT_MS = 30_000;
const STOP_WAIT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** Why the baseline cannot run here, or null if it can. */
export function etcdMissing(): string | null {
  return existsSync(ETCD_BIN)
    ? null
    : `${ETCD_BIN} not found (apt-get install -y etcd-server provides it)`;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** A client of one etcd member's v3 JSON gateway. */
export class EtcdJsonClient {
  constructor(private readonly base: string) {}

  /** POSTs `body` to `/v3/<path>`; throws on a transport error or a non-2xx answer. */
  async call(path: string, body: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.base}/v3/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  async put(key: string, value: string): Promise<void> {
    await this.call('kv/put', { key: b64(key), value: b64(value) });
  }

  /** The value of `key` or null; `serializable` false is etcd's linearizable read. */
  async get(key: string, serializable = false): Promise<string | null> {
    const body = await this.call('kv/range', { key: b64(key), serializable });
    const kvs = body.kvs as { value?: string }[] | undefined;
    if (kvs === undefined || kvs.length === 0) return null;
    return unb64(kvs[0]!.value ?? '');
  }

  /** Puts `value` if the current value is `expect` (null: absent), in one txn. */
  async cas(key: string, expect: string | null, value: string): Promise<boolean> {
    const compare =
      expect === null
        ? { key: b64(key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }
        : { key: b64(key), target: 'VALUE', result: 'EQUAL', value: b64(expect) };
    const body = await this.call('kv/txn', {
      compare: [compare],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    });
    // The gateway leaves out false fields: no `succeeded` means the compare failed.
    return body.succeeded === true;
  }

  /** This member's id and the leader it knows (0 when none), as decimal strings. */
  async status(): Promise<{ member: string; leader: string; version: string }> {
    const body = await this.call('maintenance/status', {});
    const header = body.header as { member_id?: string } | undefined;
    return {
      member: String(header?.member_id ?? ''),
      leader: String(body.leader ?? '0'),
      version: String(body.version ?? '?'),
    };
  }
}

/** A running local etcd cluster. */
export interface EtcdCluster {
  readonly version: string;
  readonly clientUrls: string[];
  /** The member that was leader once a write went through. */
  readonly leader: EtcdJsonClient;
  readonly leaderUrl: string;
  /** SIGTERM each member, wait (bounded) for it to exit, SIGKILL stragglers; remove the temp dir. */
  stop(): Promise<void>;
}

/** Starts 3 etcd members on the given 6 distinct ports (client, peer per member). */
export async function startEtcdCluster(ports: number[]): Promise<EtcdCluster> {
  if (ports.length < 6) throw new Error('startEtcdCluster needs 6 ports');
  const root = mkdtempSync(join(tmpdir(), 'tessera-bench-etcd-'));
  const ids = [1, 2, 3];
  const client = (i: number): string => `http://127.0.0.1:${ports[2 * i]}`;
  const peer = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1]}`;
  const initialCluster = ids.map((id, i) => `e${id}=${peer(i)}`).join(',');
  const logs = ids.map((id) => join(root, `e${id}.log`));
  const procs: ChildProcess[] = ids.map((id, i) => {
    const log = openSync(logs[i]!, 'a');
    const p = spawn(
      ETCD_BIN,
      [
        '--name',
        `e${id}`,
        '--data-dir',
        join(root, `e${id}`),
        '--listen-client-urls',
        client(i),
        '--advertise-client-urls',
        client(i),
        '--listen-peer-urls',
        peer(i),
        '--initial-advertise-peer-urls',
        peer(i),
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        'tessera-bench-kv',
        '--initial-cluster-state',
        'new',
        '--logger',
        'zap',
        '--log-outputs',
        'stderr',
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    return p;
  });

  const stop = async (): Promise<void> => {
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((resolve) => p.once('exit', resolve));
        p.kill('SIGTERM');
        const clean = await Promise.race([exited.then(() => true), sleep(STOP_WAIT_MS, false)]);
        if (!clean) {
          p.kill('SIGKILL');
          await exited;
        }
      }),
    );
    rmSync(root, { recursive: true, force: true });
  };

  try {
    const clients = ids.map((_, i) => new EtcdJsonClient(client(i)));
    const deadline = performance.now() + LEADER_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
      if (dead !== undefined)
        throw new Error(`an etcd member exited (${dead.exitCode ?? dead.signalCode})`);
      if (performance.now() > deadline)
        throw new Error(`no etcd leader within ${LEADER_WAIT_MS} ms`);
      const statuses = await Promise.all(clients.map((c) => c.status().catch(() => null)));
      const i = statuses.findIndex((s) => s !== null && s.leader !== '0' && s.leader === s.member);
      if (i >= 0) {
        const leader = clients[i]!;
        // A leader may not yet have committed an entry of its term: wait for a write.
        const wrote = await leader.put('bench-ready', 'yes').then(
          () => true,
          () => false,
        );
        if (wrote) {
          return {
            version: statuses[i]!.version,
            clientUrls: ids.map((_, j) => client(j)),
            leader,
            leaderUrl: client(i),
            stop,
          };
        }
      }
      await sleep(Math.min(500, 50 * (attempt + 1)));
    }
  } catch (e) {
    const tail = logs
      .map((l) => readFileSync(l, 'utf8').split('\n').slice(-5).join('\n'))
      .join('\n');
    await stop();
    throw new Error(`${(e as Error).message}\n${tail}`);
  }
}
