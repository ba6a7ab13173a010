/**
 * Exactly-once sessions of one client. The server remembers, per session
 * id, only the last sequence number it applied and that command's result
 * (kv/state-machine.ts): a retry of the last command is answered from the
 * result, an older one is rejected as stale. So a session may have only one
 * write in flight; to keep several writes in flight the client holds a pool
 * of sessions ("lanes"), each leased to one write at a time, from its first
 * attempt to its final outcome. A lane numbers its writes 1, 2, 3, ...
 *
 * Lane 0 has the client id; further lanes are opened on demand with fresh
 * random ids, up to `lanesMax`. Writes beyond that wait, in order, up to
 * `waitersMax`; then RESOURCE_EXHAUSTED (nothing was sent).
 */
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import { abortReason } from './errors.ts';

/** The session and sequence number one write carries in all its attempts. */
export interface WriteSession {
  /** Session id, sent as `x-tessera-client`. */
  readonly client: number;
  /** Sequence number within the session, sent as `x-tessera-seq`. */
  readonly seq: number;
}

/** One write's hold on a lane; `release` exactly once when the write is over. */
export interface SessionLease {
  readonly session: WriteSession;
  release(): void;
}

interface Lane {
  readonly client: number;
  lastSeq: number;
}

interface Waiter {
  resolve(lease: SessionLease): void;
  reject(reason: unknown): void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

export class SessionPool {
  private readonly lanes: Lane[] = [];
  private readonly idle: Lane[] = [];
  private readonly waiters: Waiter[] = [];

  constructor(
    firstClientId: number,
    private readonly lanesMax: number,
    private readonly waitersMax: number,
    private readonly newClientId: () => number,
  ) {
    assert(lanesMax >= 1, 'a session pool needs at least one lane');
    const lane = { client: firstClientId, lastSeq: 0 };
    this.lanes.push(lane);
    this.idle.push(lane);
  }

  /** Sessions opened so far. */
  get size(): number {
    return this.lanes.length;
  }

  /**
   * A lane for one write, with its next sequence number. Rejects with the
   * abort reason if `signal` aborts while waiting, and with
   * RESOURCE_EXHAUSTED if too many writes wait already.
   */
  acquire(signal?: AbortSignal): Promise<SessionLease> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const lane = this.idle.pop() ?? this.open();
    if (lane !== null) return Promise.resolve(this.lease(lane));
    if (this.waiters.length >= this.waitersMax) {
      return Promise.reject(
        new TesseraError('RESOURCE_EXHAUSTED', 'too many writes wait for a client session', {
          limit: this.waitersMax,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortReason(signal!));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private open(): Lane | null {
    if (this.lanes.length >= this.lanesMax) return null;
    let client = this.newClientId();
    for (let i = 0; i < 8 && this.lanes.some((l) => l.client === client); i++) {
      client = this.newClientId();
    }
    assert(!this.lanes.some((l) => l.client === client), 'could not draw a fresh session id');
    const lane = { client, lastSeq: 0 };
    this.lanes.push(lane);
    return lane;
  }

  private lease(lane: Lane): SessionLease {
    lane.lastSeq += 1;
    assert(Number.isSafeInteger(lane.lastSeq), 'session sequence number overflow');
    let released = false;
    return {
      session: { client: lane.client, seq: lane.lastSeq },
      release: () => {
        assert(!released, 'session lease released twice');
        released = true;
        this.handOver(lane);
      },
    };
  }

  private handOver(lane: Lane): void {
    const waiter = this.waiters.shift();
    if (waiter === undefined) {
      this.idle.push(lane);
      return;
    }
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.resolve(this.lease(lane));
  }
}
