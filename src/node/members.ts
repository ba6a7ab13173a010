/**
 * The textual form of a static cluster's membership, as the CLI takes it:
 * `ID=RAFT_HOST:RAFT_PORT/HTTP_HOST:HTTP_PORT`, comma-separated, e.g.
 * `1=127.0.0.1:7001/127.0.0.1:8001,2=127.0.0.1:7002/127.0.0.1:8002`.
 */
import { TesseraError } from '../core/errors.ts';
import type { NodeId } from '../core/ids.ts';
import { nodeId } from '../core/ids.ts';
import type { MemberAddress } from './server.ts';

/** Parses a members list; throws INVALID_ARGUMENT on any malformed part. */
export function parseMembers(text: string): Map<NodeId, MemberAddress> {
  const members = new Map<NodeId, MemberAddress>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^(\d+)=([^:/]+):(\d+)\/([^:/]+):(\d+)$/.exec(part);
    if (m === null) throw new TesseraError('INVALID_ARGUMENT', `bad member "${part}"`);
    const id = nodeId(Number(m[1]));
    if (id <= 0 || members.has(id)) {
      throw new TesseraError('INVALID_ARGUMENT', `bad or duplicate member id in "${part}"`);
    }
    members.set(id, {
      raftHost: m[2]!,
      raftPort: port(m[3]!),
      httpHost: m[4]!,
      httpPort: port(m[5]!),
    });
  }
  return members;
}

/** Formats members as {@link parseMembers} reads them. */
export function formatMembers(members: ReadonlyMap<NodeId, MemberAddress>): string {
  return [...members]
    .map(([id, m]) => `${id}=${m.raftHost}:${m.raftPort}/${m.httpHost}:${m.httpPort}`)
    .join(',');
}

function port(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new TesseraError('INVALID_ARGUMENT', `bad port ${text}`);
  }
  return n;
}
