/**
 * A single-node Tessera process on the real disk: one range, one Raft group
 * of one voter, the log engine and the LMDB state engine, driven in real time.
 * It speaks a line protocol on stdin/stdout (one JSON object per line) so
 * that the crash test can drive it, kill it with SIGKILL and restart it:
 *
 *   in:  {"id":1,"op":"append","client":3,"seq":7,"key":"k1","value":"3.7;"}
 *   out: {"id":1,"ok":true}                      once applied (durable)
 *   in:  {"id":2,"op":"status"}
 *   out: {"id":2,"applied":..,"commit":..,"lastIndex":..,"leader":true}
 *   in:  {"id":3,"op":"dump"}
 *   out: {"id":3,"data":{"k1":"..."}}
 *
 * Writes are acknowledged only after the log engine's fsync and the state
 * engine's commit. Usage: single-node.ts --dir DIR [--bug ack-on-propose]
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { logIndex, nodeId, rangeId } from '../core/ids.ts';
import { SeededRng } from '../core/rng.ts';
import type { KvCommand } from '../kv/command.ts';
import { encodeCommand } from '../kv/command.ts';
import { DEFAULT_RAFT_CONFIG } from '../raft/raft.ts';
import { Replica } from '../server/replica.ts';
import { LmdbStateEngine } from '../storage/engine/lmdb-state-engine.ts';
import { LogEngine } from '../storage/wal/log-engine.ts';
import { NodeFileSystem } from './fs.ts';

const RANGE = rangeId(1);
const ID = nodeId(1);
const TICK_MS = 10;
/** How long a proposal waits for others to share its fsync. */
const GROUP_COMMIT_WAIT_MS = 1;
/** Requests waiting for their entry to apply; beyond this new writes are refused. */
const PENDING_MAX = 10_000;

interface Request {
  readonly id: number;
  readonly op: 'append' | 'put' | 'status' | 'dump';
  readonly client?: number;
  readonly seq?: number;
  readonly key?: string;
  readonly value?: string;
}

function main(): void {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, bug: { type: 'string' } } });
  // Canary for the crash test: acknowledge a write when it is proposed, before it is durable.
  const ackOnPropose = values.bug === 'ack-on-propose';
  const dir = values.dir;
  if (dir === undefined) throw new Error('usage: single-node --dir DIR');
  const fs = new NodeFileSystem();
  fs.mkdirp(dir);
  const log = LogEngine.open(fs, `${dir}/wal`);
  const state = LmdbStateEngine.open(`${dir}/state`);
  if (state.applied(RANGE) === null) Replica.bootstrap(log, state, RANGE, [ID]);

  const out = (o: object): void => {
    process.stdout.write(`${JSON.stringify(o)}\n`);
  };
  /** "client:seq" -> request ids waiting for that command to apply. */
  const pending = new Map<string, number[]>();
  const replica = Replica.recover(
    log,
    state,
    {
      range: RANGE,
      snapshotEveryEntries: 500,
      raft: { ...DEFAULT_RAFT_CONFIG, id: ID, rng: new SeededRng(process.pid) },
    },
    {
      send: () => {}, // A single voter has no peers.
      applied: (_e, cmd, outcome) => {
        if (cmd === null || outcome === null || outcome.kind === 'stale') return;
        const key = `${cmd.client}:${cmd.seq}`;
        for (const id of pending.get(key) ?? []) out({ id, ok: true });
        pending.delete(key);
      },
      readState: () => {},
    },
  );

  const pump = (): void => {
    for (;;) {
      const p = replica.prepare();
      if (p === null) return;
      if (p.needsSync) log.sync();
      replica.finish(p.ready);
    }
  };
  // Group commit: requests that arrive within the wait share one Ready and one fsync.
  let pumpScheduled = false;
  const schedulePump = (): void => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setTimeout(() => {
      pumpScheduled = false;
      pump();
    }, GROUP_COMMIT_WAIT_MS);
  };
  replica.raft.campaign();
  pump();
  setInterval(() => {
    replica.raft.tick();
    pump();
  }, TICK_MS);

  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch {
      out({ error: 'INVALID_ARGUMENT', message: 'malformed request line' });
      return;
    }
    if (req.op === 'status') {
      const st = replica.raft.status();
      out({
        id: req.id,
        applied: st.applied,
        commit: st.commit,
        lastIndex: st.lastIndex,
        stateApplied: state.applied(RANGE)?.index ?? 0,
        leader: st.role === 'leader',
      });
      return;
    }
    if (req.op === 'dump') {
      const data: Record<string, string> = {};
      for (const [k, v] of state.scan(RANGE, new Uint8Array([0x64]), new Uint8Array([0x65]), 1e9)) {
        data[new TextDecoder().decode(k.subarray(1))] = new TextDecoder().decode(v);
      }
      out({ id: req.id, data });
      return;
    }
    const cmd: KvCommand = {
      client: req.client ?? 0,
      seq: req.seq ?? 0,
      op: req.op === 'put' ? 'put' : 'append',
      key: req.key ?? '',
      value: req.value ?? '',
      expect: null,
      // The log clock that expires idle sessions (kv/session-table.ts).
      at: Date.now(),
    };
    if (pending.size >= PENDING_MAX) {
      out({ id: req.id, error: 'RESOURCE_EXHAUSTED' });
      return;
    }
    const r = replica.raft.propose(encodeCommand(cmd));
    if (!r.ok) {
      out({ id: req.id, error: r.code });
      return;
    }
    const key = `${cmd.client}:${cmd.seq}`;
    if (ackOnPropose) out({ id: req.id, ok: true });
    else pending.set(key, [...(pending.get(key) ?? []), req.id]);
    schedulePump();
  });
  out({ ready: true, pid: process.pid, applied: state.applied(RANGE)?.index ?? logIndex(0) });
}

main();
