/**
 * The replicated key-value state machine: put, delete, compare-and-swap, and
 * get (served outside the log after a ReadIndex), stored in a
 * {@link StateEngine} under one range.
 *
 * Durability: every applied entry commits its effects and the applied
 * position (index, term, configuration) in one atomic state-engine commit,
 * so after a restart the state says exactly which log entries it covers.
 *
 * Exactly-once: each client session's last sequence number and result are
 * stored beside the data (commands of client {@link SESSIONLESS} skip this),
 * so a retried command (same session and sequence number, proposed again
 * after a timeout, a leader change or a crash) answers from the stored
 * result instead of applying twice, and a command older than the session's
 * last one is not applied at all.
 *
 * Sessions expire (session-table.ts): one unused for more than the idle
 * window of log time (default `SESSION_IDLE_MS`, 10 minutes), as told
 * by the proposers' timestamps in the log, is forgotten, and so is the least
 * recently used one when a new session would exceed the cap (default
 * `SESSIONS_MAX`). A forgotten session's next command applies as new:
 * a client must not retry a write for longer than the idle window (the
 * TypeScript client's whole-call deadline is 20 s by default and at most
 * 5 minutes: `DEADLINE_MS_MAX` in src/client/options.ts). The log
 * clock, the sessions and their index are range keys written in the same
 * commit as the data, so snapshots and restarts carry them.
 */
import { pack, unpack } from 'msgpackr';
import { assertNever } from '../core/assert.ts';
import type { RangeId } from '../core/ids.ts';
import type { CanaryName } from '../raft/canaries.ts';
import type { SnapshotMeta } from '../raft/types.ts';
import type { SnapshotChunk, StateEngine } from '../storage/state-engine.ts';
import type { KvCommand, KvResult, TableWrite } from './command.ts';
import { WriteSet } from './write-set.ts';
import { EngineKvView } from './engine-kv-view.ts';
import { applyTableWrite, tablePrefix } from './table-apply.ts';
import type { SessionLimits, SessionStats, SessionStore } from './session-table.ts';
import {
  checkSessionLimits,
  DEFAULT_SESSION_LIMITS,
  readSessionStats,
  SessionTable,
} from './session-table.ts';

/** How a command was handled. */
export type ApplyOutcome =
  | { readonly kind: 'applied'; readonly result: KvResult }
  /** Same session and sequence as the last applied command: its remembered result. */
  | { readonly kind: 'duplicate'; readonly result: KvResult }
  /** Older than the session's last command: the client gave up on it; nothing applied. */
  | { readonly kind: 'stale' };

/** One page of a scan. */
export interface KvPage {
  readonly pairs: ReadonlyArray<readonly [key: string, value: string]>;
  /** The key to continue from, or null when the scan reached its end. */
  readonly next: string | null;
}

/**
 * The client id of commands without a session: they are applied without
 * exactly-once bookkeeping, so the session table does not grow with them.
 */
export const SESSIONLESS = 0;

/** Snapshot chunks carry at most this many payload bytes. */
const SNAPSHOT_CHUNK_BYTES_MAX = 64 << 10;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Key prefix of user data inside the range; sessions use 's', 'l' and 'm' (session-table.ts). */
const DATA = 0x64; // 'd'

function prefixed(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

const dataKey = (key: string): Uint8Array => prefixed(DATA, encoder.encode(key));

/** One committed entry to apply: a command, or null for a no-op or a conf change. */
export interface ApplyItem {
  readonly cmd: KvCommand | null;
  readonly position: SnapshotMeta;
}

/**
 * The state machine of one range over a state engine. `sessions` are the
 * session table's limits: every replica of the range must use the same ones
 * (see {@link SessionLimits}). `bugs` switches canaries on (simulation only;
 * src/raft/canaries.ts).
 */
export class KvStateMachine {
  /** The batch being applied, if any. */
  private batch: WriteSet | null = null;
  private readonly sessions: SessionLimits;

  constructor(
    private readonly engine: StateEngine,
    private readonly range: RangeId,
    sessions: SessionLimits = DEFAULT_SESSION_LIMITS,
    private readonly bugs: ReadonlySet<CanaryName> = new Set(),
  ) {
    checkSessionLimits(sessions);
    this.sessions = sessions;
  }

  /** The current value of a raw key, including the effects of the batch being applied. */
  private read(key: Uint8Array): Uint8Array | undefined {
    const pending = this.batch?.get(key);
    if (pending !== undefined) return pending ?? undefined;
    return this.engine.get(this.range, key);
  }

  get(key: string): string | null {
    const v = this.read(dataKey(key));
    return v === undefined ? null : decoder.decode(v);
  }

  /**
   * Keys in [start, end) (end null = to the last key), in byte order, at
   * most `limit` pairs and about `bytesMax` bytes of keys and values (at
   * least one pair). `next` is the key to continue from, or null at the end.
   */
  scan(start: string, end: string | null, limit: number, bytesMax: number): KvPage {
    const from = dataKey(start);
    const to = end === null ? new Uint8Array([DATA + 1]) : dataKey(end);
    const rows = this.engine.scan(this.range, from, to, limit + 1);
    const pairs: [string, string][] = [];
    let bytes = 0;
    for (const [k, v] of rows) {
      const key = decoder.decode(k.subarray(1));
      if (pairs.length === limit || (pairs.length > 0 && bytes + k.length + v.length > bytesMax)) {
        return { pairs, next: key };
      }
      bytes += k.length + v.length;
      pairs.push([key, decoder.decode(v)]);
    }
    return { pairs, next: null };
  }

  /**
   * A read-only view of table `tableId`'s records in this range (committed
   * state), for row reads outside the log.
   */
  tableView(tableId: number): EngineKvView {
    return new EngineKvView(this.engine, this.range, tablePrefix(tableId), null);
  }

  /** The session table's counters and log clock, as of the last applied entry. */
  sessionStats(): SessionStats {
    return readSessionStats((key) => this.read(key));
  }

  /** The position the stored state covers, or null before anything was applied. */
  applied(): SnapshotMeta | null {
    return this.engine.applied(this.range);
  }

  /**
   * Applies one committed entry at `position`: a command, or null for an
   * entry with no key-value effect (a leader's no-op or a conf change).
   */
  apply(cmd: KvCommand | null, position: SnapshotMeta): ApplyOutcome | null {
    return this.applyBatch([{ cmd, position }])[0]!;
  }

  /**
   * Applies committed entries in order and makes their effects and the last
   * position durable in one state-engine commit (all or nothing). Each entry
   * sees the effects of the ones before it. The result does not depend on
   * how entries are split into batches: session expiry is bounded per
   * command, not per batch.
   */
  applyBatch(items: readonly ApplyItem[]): (ApplyOutcome | null)[] {
    const last = items[items.length - 1];
    if (last === undefined) return [];
    const ws = new WriteSet();
    this.batch = ws;
    try {
      const store: SessionStore = {
        get: (key) => this.read(key),
        set: (key, value) => ws.set(key, value),
        scanCommitted: (start, end, limit) => this.engine.scan(this.range, start, end, limit),
      };
      const table = new SessionTable(store, this.sessions);
      const outcomes = items.map((it) =>
        it.cmd === null ? null : this.applyCommand(it.cmd, ws, table),
      );
      table.finish();
      this.engine.commit({
        range: this.range,
        puts: ws.puts(),
        deletes: ws.deletes(),
        applied: last.position,
      });
      return outcomes;
    } finally {
      this.batch = null;
    }
  }

  private applyCommand(cmd: KvCommand, ws: WriteSet, table: SessionTable): ApplyOutcome {
    // Raft thesis §6.3: time comes from the log, so every replica expires alike.
    table.advance(cmd.at);
    if (cmd.client === SESSIONLESS) {
      // No session: applied as it comes, nothing remembered (no exactly-once).
      return { kind: 'applied', result: this.execute(cmd, ws, table.clockMs) };
    }
    const session = table.get(cmd.client);
    if (session !== undefined && cmd.seq <= session.seq) {
      table.reuse(cmd.client, session);
      return cmd.seq === session.seq
        ? { kind: 'duplicate', result: session.result }
        : { kind: 'stale' };
    }
    const result = this.execute(cmd, ws, table.clockMs);
    table.record(cmd.client, cmd.seq, result, session);
    return { kind: 'applied', result };
  }

  /** Applies one command's effects to the batch; `nowMs` is the log clock (table versions, TTL). */
  private execute(cmd: KvCommand, ws: WriteSet, nowMs: number): KvResult {
    const key = dataKey(cmd.key);
    switch (cmd.op) {
      case 'table':
        return this.executeTable(cmd, ws, nowMs);
      case 'put':
        ws.set(key, encoder.encode(cmd.value ?? ''));
        return { ok: true };
      case 'delete':
        ws.set(key, null);
        return { ok: true };
      case 'append':
        ws.set(key, encoder.encode((this.get(cmd.key) ?? '') + (cmd.value ?? '')));
        return { ok: true };
      case 'cas': {
        if (this.get(cmd.key) !== cmd.expect) return { ok: false };
        ws.set(key, cmd.value === null ? null : encoder.encode(cmd.value));
        return { ok: true };
      }
      default:
        return assertNever(cmd.op, 'kv op');
    }
  }

  /**
   * A row write, or a batch of them (`batch`): each item on its own (a
   * failed one leaves nothing behind, the others apply), or with `atomic`
   * all or none (the first failure undoes every item).
   */
  private executeTable(cmd: KvCommand, ws: WriteSet, nowMs: number): KvResult {
    const apply = (w: TableWrite): KvResult =>
      applyTableWrite(
        new EngineKvView(this.engine, this.range, tablePrefix(w.tableId), ws),
        this.maybeBuggy(w),
        nowMs,
      );
    if (cmd.table !== undefined) {
      ws.savepoint();
      const result = apply(cmd.table);
      if (result.ok) ws.release();
      else ws.rollback();
      return result;
    }
    const batch = cmd.batch;
    if (batch === undefined || batch.writes.length === 0) {
      return { ok: false, error: { code: 'INVALID_ARGUMENT', message: 'no row write' } };
    }
    if (!batch.atomic) {
      const results = batch.writes.map((w) => {
        ws.savepoint();
        const r = apply(w);
        if (r.ok) ws.release();
        else ws.rollback();
        return r;
      });
      return { ok: true, results };
    }
    ws.savepoint();
    const results: KvResult[] = [];
    for (const [i, w] of batch.writes.entries()) {
      const r = apply(w);
      results.push(r);
      if (!r.ok) {
        ws.rollback();
        const undone = {
          ok: false,
          error: {
            code: r.error!.code,
            message: `not applied: item ${i} of the atomic batch failed`,
          },
        };
        return {
          ok: false,
          error: r.error!,
          results: batch.writes.map((_, j) => (j === i ? r : undone)),
        };
      }
    }
    ws.release();
    return { ok: true, results };
  }

  /** The row write as applied: without its condition if it is an update and the canary is on. */
  private maybeBuggy(w: TableWrite): TableWrite {
    if (w.kind !== 'update' || !this.bugs.has('row-update-ignores-condition')) return w;
    return { ...w, condition: undefined };
  }

  /** The whole range (data, sessions, log clock, applied position) as snapshot bytes. */
  snapshot(): Uint8Array {
    const chunks = [...this.engine.exportSnapshot(this.range, SNAPSHOT_CHUNK_BYTES_MAX)];
    return pack(chunks);
  }

  /** Replaces the range with a snapshot made by {@link snapshot} (checksummed by the engine). */
  restore(bytes: Uint8Array): void {
    const chunks = unpack(bytes) as SnapshotChunk[];
    this.engine.importSnapshot(this.range, chunks);
  }
}

/**
 * The state-engine pairs that hold `pairs` as key-value data of a range:
 * how a new cluster writes a range's initial content (the meta range's)
 * in the same commit as its bootstrap position.
 */
export function initialDataPuts(
  pairs: ReadonlyArray<readonly [key: string, value: string]>,
): [Uint8Array, Uint8Array][] {
  return pairs.map(([k, v]) => [dataKey(k), encoder.encode(v)]);
}
