/**
 * Client requests a node holds while Raft works on them: writes wait for
 * their entry to apply, linearizable reads for their ReadState and then for
 * the state machine to reach its index (thesis §6.4). Each request has a
 * deadline; every request is answered exactly once (resolved or rejected).
 *
 * Outcomes are kept apart as the error registry prescribes: a write that
 * was proposed and then timed out is OUTCOME_UNKNOWN (it may still apply); a
 * write whose log slot was taken by another entry is PROPOSAL_DROPPED
 * (definitely not applied: an entry exists at exactly one index and term).
 */
import { TesseraError } from '../core/errors.ts';
import type { LogIndex, Term } from '../core/ids.ts';
import type { KvResult } from '../kv/command.ts';

/** One waiter: settles a promise once, then cancels its deadline. */
interface Waiter<T> {
  resolve(value: T): void;
  reject(err: TesseraError): void;
  readonly timer: NodeJS.Timeout;
}

/** A log slot a proposal was appended at. */
interface Slot {
  readonly index: LogIndex;
  readonly term: Term;
}

/** A write proposed (once or more) and everyone waiting for it. */
interface PendingWrite {
  /** Slots of proposals that may still commit; none left means dropped. */
  slots: Slot[];
  readonly waiters: Waiter<KvResult>[];
}

/** A linearizable read; `index` is -1 until its ReadState arrives. */
interface PendingRead {
  /** Reads the state machine once it has applied `index`. */
  readonly serve: () => unknown;
  index: number;
  readonly waiter: Waiter<unknown>;
}

/** The bookkeeping of in-flight client requests of one range on one node. */
export class PendingRequests {
  /** "client:seq" -> the write and everyone waiting for it. */
  private readonly writes = new Map<string, PendingWrite>();
  /** Read context -> the read. */
  private readonly reads = new Map<string, PendingRead>();

  /**
   * @param requestsMax in-flight requests beyond which {@link checkCapacity} refuses.
   * @param deadlineMs how long a request waits before it fails.
   */
  constructor(
    private readonly requestsMax: number,
    private readonly deadlineMs: number,
  ) {}

  /** In-flight requests (writes by session, plus reads). */
  get size(): number {
    return this.writes.size + this.reads.size;
  }

  /** Throws RESOURCE_EXHAUSTED when no more requests may be taken. */
  checkCapacity(): void {
    if (this.size >= this.requestsMax) {
      throw new TesseraError('RESOURCE_EXHAUSTED', 'too many requests in flight on this node', {
        limit: this.requestsMax,
        actual: this.size,
      });
    }
  }

  /**
   * Waits for the write `session` ("client:seq") proposed at `index`/`term`.
   * A second request with the same session joins the first one's answer.
   */
  addWrite(session: string, index: LogIndex, entryTerm: Term): Promise<KvResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.dropWriteWaiter(session, waiter);
        reject(new TesseraError('OUTCOME_UNKNOWN', 'the write did not apply before its deadline'));
      }, this.deadlineMs);
      const waiter: Waiter<KvResult> = { resolve, reject, timer };
      const slot = { index, term: entryTerm };
      const existing = this.writes.get(session);
      if (existing === undefined) this.writes.set(session, { slots: [slot], waiters: [waiter] });
      else {
        existing.slots.push(slot);
        existing.waiters.push(waiter);
      }
    });
  }

  /** Answers the writes of `session` with `result` (it applied now or earlier). */
  resolveWrite(session: string, result: KvResult): void {
    const w = this.writes.get(session);
    if (w === undefined) return;
    this.writes.delete(session);
    for (const waiter of w.waiters) settle(waiter, () => waiter.resolve(result));
  }

  /** Fails the writes of `session` with `err`. */
  rejectWrite(session: string, err: TesseraError): void {
    const w = this.writes.get(session);
    if (w === undefined) return;
    this.writes.delete(session);
    for (const waiter of w.waiters) settle(waiter, () => waiter.reject(err));
  }

  /**
   * An entry was applied at `index` in `entryTerm`. A waiting write proposed
   * at that index in another term lost its slot: that proposal will never
   * apply (Raft §5.3, Log Matching). When all its proposals lost their
   * slots, the write was definitely not applied.
   */
  onSlotApplied(index: LogIndex, entryTerm: Term): void {
    for (const [session, w] of this.writes) {
      const lost = w.slots.filter((s) => s.index === index && s.term !== entryTerm);
      if (lost.length === 0) continue;
      w.slots = w.slots.filter((s) => !lost.includes(s));
      if (w.slots.length === 0) this.rejectWrite(session, new TesseraError('PROPOSAL_DROPPED'));
    }
  }

  /** Waits for the linearizable read `context`; `serve` reads the state once it is safe. */
  addRead<T>(context: string, serve: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(context);
        reject(new TesseraError('TIMEOUT', 'the read was not confirmed before its deadline'));
      }, this.deadlineMs);
      const waiter: Waiter<unknown> = { resolve: (v) => resolve(v as T), reject, timer };
      this.reads.set(context, { serve, index: -1, waiter });
    });
  }

  /** The ReadState of `context` arrived: the read may be served once `index` is applied. */
  onReadState(context: string, index: LogIndex): void {
    const r = this.reads.get(context);
    if (r !== undefined) r.index = index;
  }

  /** Serves every read whose index is applied. */
  serveReads(applied: LogIndex): void {
    for (const [context, r] of this.reads) {
      if (r.index < 0 || r.index > applied) continue;
      this.reads.delete(context);
      const value = r.serve();
      settle(r.waiter, () => r.waiter.resolve(value));
    }
  }

  /**
   * Fails every read still waiting (for its ReadState or its index) with
   * `err`: after a leader change a read forwarded to or confirmed by the old
   * leader may never be answered; failing it now lets the client retry at
   * once instead of at the deadline. Reads have no effect, so this is safe.
   */
  rejectReads(err: TesseraError): void {
    for (const r of this.reads.values()) settle(r.waiter, () => r.waiter.reject(err));
    this.reads.clear();
  }

  /** Fails everything in flight (shutdown). */
  rejectAll(err: TesseraError): void {
    for (const session of [...this.writes.keys()]) this.rejectWrite(session, err);
    for (const r of this.reads.values()) settle(r.waiter, () => r.waiter.reject(err));
    this.reads.clear();
  }

  private dropWriteWaiter(session: string, waiter: Waiter<KvResult>): void {
    const w = this.writes.get(session);
    if (w === undefined) return;
    const at = w.waiters.indexOf(waiter);
    if (at >= 0) w.waiters.splice(at, 1);
    if (w.waiters.length === 0) this.writes.delete(session);
  }
}

function settle<T>(waiter: Waiter<T>, answer: () => void): void {
  clearTimeout(waiter.timer);
  answer();
}
