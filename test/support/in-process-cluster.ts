/**
 * A Tessera cluster run in-process, for tests: one TesseraServer per node,
 * each with a temp data dir, a silent logger and every port (Raft, HTTP,
 * gRPC) a free loopback port. Start, find the leader of a data range, stop.
 * Every wait is bounded; `stop` stops every server it created and removes
 * the data directories.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { nodeId, type NodeId } from '../../src/core/ids.ts';
import type { RangeStatus } from '../../src/api/http-api.ts';
import { sleep } from '../../src/node/http-client.ts';
import { TesseraServer, type MemberAddress } from '../../src/node/server.ts';
import { dataRangeHolding, freePorts } from './local-cluster.ts';

/** How long {@link InProcessCluster.waitForLeader} waits by default. */
export const LEADER_WAIT_MS = 20_000;
const POLL_MS = 50;

/** One node of an {@link InProcessCluster}. */
export interface InProcessNode {
  readonly id: number;
  readonly server: TesseraServer;
  /** host:port of its HTTP API. */
  readonly http: string;
  /** host:port of its gRPC API. */
  readonly grpc: string;
}

export class InProcessCluster {
  /** Nodes by id; filled by {@link start}. */
  readonly nodes = new Map<number, InProcessNode>();
  private root = '';

  constructor(
    /** Prefix of the temp directory that holds every node's data dir. */
    private readonly dirPrefix: string,
    /** The cluster id every node is given. */
    private readonly clusterId: string,
    readonly ids: readonly number[] = [1, 2, 3],
  ) {}

  /** Allocates ports and directories, creates every server and starts them all. */
  async start(): Promise<void> {
    this.root = mkdtempSync(join(tmpdir(), this.dirPrefix));
    const ports = await freePorts(3 * this.ids.length);
    const members = new Map<NodeId, MemberAddress>();
    for (const [i, id] of this.ids.entries()) {
      members.set(nodeId(id), {
        raftHost: '127.0.0.1',
        raftPort: ports[3 * i]!,
        httpHost: '127.0.0.1',
        httpPort: ports[3 * i + 1]!,
      });
    }
    const logger = pino({ level: 'silent' });
    for (const [i, id] of this.ids.entries()) {
      const grpcPort = ports[3 * i + 2]!;
      const server = new TesseraServer({
        id: nodeId(id),
        dir: join(this.root, `n${id}`),
        clusterId: this.clusterId,
        members,
        logger,
        grpcPort,
      });
      const http = `127.0.0.1:${ports[3 * i + 1]!}`;
      this.nodes.set(id, { id, server, http, grpc: `127.0.0.1:${grpcPort}` });
    }
    await Promise.all([...this.nodes.values()].map((n) => n.server.start()));
  }

  /**
   * Polls until one node leads the data range holding `key` (default: the
   * first data range) and every node knows it; fails the test after `waitMs`.
   */
  async waitForLeader(waitMs = LEADER_WAIT_MS, key = ''): Promise<InProcessNode> {
    const range = (n: InProcessNode): RangeStatus | undefined =>
      dataRangeHolding(n.server.status().ranges, key);
    const nodes = [...this.nodes.values()];
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      const leader = nodes.find((n) => range(n)?.role === 'leader');
      if (leader && nodes.every((n) => range(n)?.leader === leader.id)) return leader;
      await sleep(POLL_MS);
    }
    assert.fail(`no leader known to every node within ${waitMs} ms`);
  }

  /** Stops every server and removes the data. */
  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.server.stop()));
    if (this.root !== '') rmSync(this.root, { recursive: true, force: true });
  }
}
