/**
 * A 3-node Tessera cluster of real `tessera start` child processes on free
 * loopback ports, for tests: start, kill (SIGKILL, by pid), restart, find
 * the leader. Every wait is bounded; `dispose` kills every child it started
 * and removes the data directories.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeStatus, RangeStatus } from '../../src/api/http-api.ts';
import { httpJson, sleep } from '../../src/node/http-client.ts';
import { freePorts } from '../../src/node/ports.ts';
export { freePorts };

const CLI = fileURLToPath(new URL('../../src/cli/tessera.ts', import.meta.url));
/** Output kept per node, for failure messages. */
const OUTPUT_CHARS_MAX = 20_000;

export interface ClusterNode {
  readonly id: number;
  readonly dir: string;
  /** host:port of its HTTP API. */
  readonly http: string;
  proc: ChildProcess | null;
  output: string;
}

export class LocalCluster {
  /** Nodes by id; filled by {@link init}. */
  readonly nodes = new Map<number, ClusterNode>();
  private root = '';
  private members = '';

  constructor(
    private readonly dirPrefix: string,
    private readonly ids: readonly number[] = [1, 2, 3],
    /** Initial split points of the key space (`--initial-splits`). */
    private readonly splits: readonly string[] = [],
    /** Ids (of `ids`) that do not found the cluster: they start with `--join`. */
    private readonly joiners: readonly number[] = [],
  ) {}

  /** The `--members` list of every node, joiners included. */
  private allMembers = '';

  /** Allocates ports and directories and starts every node. */
  async init(): Promise<void> {
    this.root = mkdtempSync(join(tmpdir(), this.dirPrefix));
    const ports = await freePorts(2 * this.ids.length);
    const parts: string[] = [];
    for (const [i, id] of this.ids.entries()) {
      const raft = ports[2 * i]!;
      const http = ports[2 * i + 1]!;
      parts.push(`${id}=127.0.0.1:${raft}/127.0.0.1:${http}`);
      const dir = join(this.root, `n${id}`);
      this.nodes.set(id, { id, dir, http: `127.0.0.1:${http}`, proc: null, output: '' });
    }
    this.allMembers = parts.join(',');
    this.members = parts.filter((_, i) => !this.joiners.includes(this.ids[i]!)).join(',');
    for (const node of this.nodes.values()) if (!this.joiners.includes(node.id)) this.start(node);
  }

  /** The Raft address of a node (`host:port`). */
  raftAddress(id: number): string {
    const part = this.allMembers.split(',').find((p) => p.startsWith(`${id}=`))!;
    return part.slice(part.indexOf('=') + 1, part.indexOf('/'));
  }

  /** Starts (or restarts) one node's process; joiners start with `--join`. */
  start(node: ClusterNode): void {
    const args = ['--import', 'tsx', CLI, 'start', '--id', String(node.id), '--dir', node.dir];
    const joins = this.joiners.includes(node.id);
    args.push('--cluster', 'test-cluster', '--members', joins ? this.allMembers : this.members);
    if (joins) args.push('--join');
    if (this.splits.length > 0) args.push('--initial-splits', this.splits.join(','));
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      node.output = (node.output + chunk.toString()).slice(-OUTPUT_CHARS_MAX);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    node.proc = proc;
  }

  /** SIGKILLs one node's process and waits for it to exit. */
  async kill(node: ClusterNode): Promise<void> {
    const proc = node.proc;
    node.proc = null;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }

  async statusOf(node: ClusterNode): Promise<NodeStatus | null> {
    const r = await httpJson(node.http, {
      method: 'GET',
      path: '/v1/status',
      timeoutMs: 500,
    }).catch(() => null);
    return r?.status === 200 ? (r.body as NodeStatus) : null;
  }

  /**
   * Polls live nodes until one reports itself leader of the data range
   * holding `key` (default: the first data range); fails the test after `waitMs`.
   */
  async waitForLeader(waitMs = 20_000, key = ''): Promise<ClusterNode> {
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      for (const node of this.nodes.values()) {
        if (node.proc === null) continue;
        const st = await this.statusOf(node);
        if (st !== null && leadsKey(st, key)) return node;
      }
      await sleep(100);
    }
    const logs = [...this.nodes.values()].map((n) => `--- n${n.id}\n${n.output}`).join('\n');
    assert.fail(`no leader within ${waitMs} ms\n${logs}`);
  }

  /** HTTP addresses of the nodes whose process runs. */
  liveEndpoints(): string[] {
    return [...this.nodes.values()].filter((n) => n.proc !== null).map((n) => n.http);
  }

  /** Kills every node and removes the data. */
  async dispose(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => this.kill(n)));
    if (this.root !== '') rmSync(this.root, { recursive: true, force: true });
  }
}

/** Whether `st` says its node leads the data range that holds `key`. */
export function leadsKey(st: NodeStatus, key: string): boolean {
  return dataRangeHolding(st.ranges, key)?.role === 'leader';
}

/** The data range of `ranges` that holds `key`: the one starting last at or before it. */
export function dataRangeHolding(
  ranges: readonly RangeStatus[],
  key: string,
): RangeStatus | undefined {
  return ranges
    .filter((r) => r.kind === 'data' && Buffer.compare(Buffer.from(r.start), Buffer.from(key)) <= 0)
    .sort((a, b) => Buffer.compare(Buffer.from(b.start), Buffer.from(a.start)))[0];
}
