/**
 * A simulated client: issues one operation at a time (on a key-value key, or
 * on a row of the simulated table: src/sim/table-workload.ts), retries on
 * refusals and timeouts with the same session sequence number (so the state
 * machine applies it at most once), and records what it observed. In some
 * seeds it moves to a new session every few operations, as a restarted
 * client process would, leaving the old session to expire.
 */
import { assert } from '../core/assert.ts';
import type { NodeId } from '../core/ids.ts';
import { NO_NODE } from '../core/ids.ts';
import type { SeededRng } from '../core/rng.ts';
import type { KvOperation } from '../check/history.ts';
import type { EventQueue } from './event-queue.ts';
import type { ClientRequest, ClientResponse, KvOpName } from './protocol.ts';

export interface ClientHost {
  readonly queue: EventQueue;
  readonly rng: SeededRng;
  readonly keys: readonly string[];
  /** History keys of the simulated table's rows (empty without the table workload). */
  readonly rowKeys: readonly string[];
  /** Probability that an operation goes to a row instead of a key (0: never). */
  readonly tableShare: number;
  /** Fraction of operations that are reads. */
  readonly readRatio: number;
  /** Probability that a read goes to a random node instead of the presumed leader. */
  readonly spreadReads: number;
  /** Multiplies the client timeouts (they scale with the cluster's tick length). */
  readonly timeScale: number;
  /** Operations per session before the client opens a new one (0 = never). */
  readonly sessionOpsMax: number;
  /** Every node a client may contact. */
  endpoints(): readonly NodeId[];
  send(to: NodeId, req: ClientRequest): void;
  /** How long to wait before starting the next operation (an idle gap), or 0. */
  idleDelayMs(): number;
  /** Claims the next operation slot; false when the run has issued all it wants. */
  claimOp(): boolean;
  record(op: KvOperation, definite: boolean): void;
  nextAttemptId(): number;
  trace(line: string): void;
}

/** Per-attempt timeout range, virtual ms. */
const ATTEMPT_TIMEOUT_MIN_MS = 40;
const ATTEMPT_TIMEOUT_MAX_MS = 150;
/**
 * Whole-operation deadline, virtual ms, before the time scale: no attempt
 * of an operation is sent after it (the session idle window relies on it).
 */
export const OP_DEADLINE_MS = 1500;
const RETRY_BACKOFF_MS = 10;
/** Session ids are `generation * SESSION_ID_STRIDE + client id`; client ids stay below it. */
const SESSION_ID_STRIDE = 1000;

interface InFlight {
  readonly op: KvOpName;
  readonly key: string;
  readonly value: string | null;
  readonly expect: string | null;
  readonly session: number;
  readonly seq: number;
  readonly call: number;
  attempt: number;
  target: NodeId;
  /** An attempt may have reached a leader that proposed it. */
  mayHaveApplied: boolean;
}

export class SimClient {
  /** The current session id; `seq` numbers its operations. */
  private session: number;
  private seq = 0;
  private current: InFlight | null = null;
  private leaderGuess: NodeId = NO_NODE;
  /** Last value this client saw per key (to make cas likely to succeed). */
  private readonly seen = new Map<string, string | null>();
  done = false;

  constructor(
    readonly id: number,
    private readonly host: ClientHost,
  ) {
    assert(id > 0 && id < SESSION_ID_STRIDE, () => `client id ${id} out of range`);
    this.session = id;
  }

  /** Starts the next operation if the run wants more; otherwise marks the client done. */
  next(): void {
    const h = this.host;
    const idleMs = h.idleDelayMs();
    if (idleMs > 0) {
      h.queue.after(idleMs, () => this.next());
      return;
    }
    if (!h.claimOp()) {
      this.done = true;
      return;
    }
    if (h.sessionOpsMax > 0 && this.seq >= h.sessionOpsMax) {
      // A new session; the old one is never used again and expires.
      this.session += SESSION_ID_STRIDE;
      this.seq = 0;
    }
    const r = h.rng.next();
    // Only runs with the table workload draw for it, so key-value runs replay as before.
    const keys = h.tableShare > 0 && h.rng.chance(h.tableShare) ? h.rowKeys : h.keys;
    const key = keys[h.rng.int(0, keys.length - 1)]!;
    const seq = ++this.seq;
    const fresh = `${this.session}.${seq}`;
    let op: KvOpName;
    let value: string | null = null;
    let expect: string | null = null;
    const w = (1 - h.readRatio) / 6;
    if (r < h.readRatio) op = 'get';
    else if (r < h.readRatio + 3 * w) {
      op = 'put';
      value = fresh;
    } else if (r < h.readRatio + 5 * w) {
      op = 'cas';
      value = fresh;
      expect = this.seen.get(key) ?? null;
    } else op = 'delete';
    this.current = {
      op,
      key,
      value,
      expect,
      session: this.session,
      seq,
      call: h.queue.now,
      attempt: 0,
      // Some clients spread their reads over every node (follower reads via ReadIndex).
      target:
        op === 'get' && h.rng.chance(h.spreadReads)
          ? h.endpoints()[h.rng.int(0, h.endpoints().length - 1)]!
          : this.pickTarget(),
      mayHaveApplied: false,
    };
    this.sendAttempt();
  }

  private pickTarget(): NodeId {
    if (this.leaderGuess !== NO_NODE) return this.leaderGuess;
    const eps = this.host.endpoints();
    return eps[this.host.rng.int(0, eps.length - 1)]!;
  }

  private sendAttempt(): void {
    const h = this.host;
    const cur = this.current!;
    if (h.queue.now - cur.call >= OP_DEADLINE_MS * h.timeScale) {
      this.giveUp();
      return;
    }
    const attempt = h.nextAttemptId();
    cur.attempt = attempt;
    h.send(cur.target, {
      client: this.id,
      session: cur.session,
      attempt,
      seq: cur.seq,
      op: cur.op,
      key: cur.key,
      value: cur.value,
      expect: cur.expect,
    });
    h.queue.after(h.rng.int(ATTEMPT_TIMEOUT_MIN_MS, ATTEMPT_TIMEOUT_MAX_MS), () => {
      if (this.current !== cur || cur.attempt !== attempt) return;
      // No answer: the request may have been proposed; it may still apply.
      if (cur.op !== 'get') cur.mayHaveApplied = true;
      this.leaderGuess = NO_NODE;
      cur.target = this.pickTarget();
      this.sendAttempt();
    });
  }

  onResponse(resp: ClientResponse): void {
    const cur = this.current;
    if (cur === null || resp.attempt !== cur.attempt) return; // An answer to an older attempt.
    const h = this.host;
    if (!resp.ok) {
      // A refusal: this attempt was not applied. Earlier attempts might have been.
      cur.attempt = -1;
      this.leaderGuess = resp.leaderHint;
      cur.target = resp.leaderHint !== NO_NODE ? resp.leaderHint : this.pickTarget();
      h.queue.after(RETRY_BACKOFF_MS, () => {
        if (this.current === cur) this.sendAttempt();
      });
      return;
    }
    this.leaderGuess = cur.target;
    const op = this.outcome(cur, h.queue.now, cur.op === 'cas' ? resp.swapped : true);
    if (cur.op === 'get') op.output = resp.output;
    if (cur.op === 'get') this.seen.set(cur.key, resp.output);
    else if (cur.op === 'put' || (cur.op === 'cas' && resp.swapped))
      this.seen.set(cur.key, cur.value);
    else if (cur.op === 'delete') this.seen.set(cur.key, null);
    this.finish(op, true);
  }

  private giveUp(): void {
    const cur = this.current!;
    // Unknown if an attempt may have been applied; otherwise definitely not applied.
    const unknown = cur.mayHaveApplied;
    this.finish(
      this.outcome(cur, unknown ? null : this.host.queue.now, unknown ? null : false),
      false,
    );
  }

  /** The history record of the operation in flight. */
  private outcome(cur: InFlight, returned: number | null, ok: boolean | null): KvOperation {
    return {
      client: this.id,
      op: cur.op,
      key: cur.key,
      value: cur.value,
      expect: cur.expect,
      call: cur.call,
      return: returned,
      ok,
      output: null,
    };
  }

  private finish(op: KvOperation, definite: boolean): void {
    this.current = null;
    this.host.record(op, definite);
    this.host.queue.after(this.host.rng.int(0, 20), () => this.next());
  }
}
