/**
 * An asynchronous front end to a {@link LogStorage} for production and
 * benchmarks: many callers `await append(writes)`, and the committer stages
 * their writes together so that ONE `sync()` (one fsync) covers all of them.
 *
 * Batching: the first append of an idle committer starts a batch window of
 * `waitMaxMicros`; appends that arrive meanwhile (and those queued while a
 * batch was being synced) join the batch, until it holds `batchBytesMax`
 * bytes. Then the batch is written and synced, and every append in it
 * resolves. The wait is polled with `setImmediate`, so I/O callbacks (more
 * callers) still run during the window; Node timers cannot wait less than
 * 1 ms.
 *
 * Back-pressure: at most `queuedBytesMax` bytes wait at once; beyond that
 * `append` rejects with RESOURCE_EXHAUSTED (retryable: nothing was staged).
 * One append larger than `queuedBytesMax` rejects with REQUEST_TOO_LARGE.
 *
 * Blocking: `LogStorage.sync()` is synchronous, so the event loop is blocked
 * for each fsync (typically 0.1-10 ms). A later step may move the storage to
 * a worker thread; this class's API would not change.
 *
 * Failure: if `write` or `sync` throws, every append of the batch and every
 * queued one rejects with that error, and so does every later append: after
 * a failed fsync nothing is known about what is durable (the storage must be
 * reopened, which runs recovery).
 */
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import type { GroupWrite, LogStorage } from '../storage/log-storage.ts';

/** Tuning and limits of a {@link GroupCommitter}. */
export interface GroupCommitOptions {
  /** Longest a batch waits for more appends after its first one, in µs. Default 200. */
  readonly waitMaxMicros?: number;
  /** A batch is synced once it holds this many (estimated) bytes. Default 4 MiB. */
  readonly batchBytesMax?: number;
  /** Most (estimated) bytes waiting for a sync; more appends are refused. Default 64 MiB. */
  readonly queuedBytesMax?: number;
}

/** Default values of {@link GroupCommitOptions}. */
export const GROUP_COMMIT_DEFAULTS: Required<GroupCommitOptions> = Object.freeze({
  waitMaxMicros: 200,
  batchBytesMax: 4 * 1024 * 1024,
  queuedBytesMax: 64 * 1024 * 1024,
});

/** Estimated bytes per record beyond its payload (the log engine's header is 33 bytes). */
const RECORD_OVERHEAD_BYTES = 48;

/**
 * An upper-bound estimate of the bytes `writes` take in the log: payloads
 * plus a per-record overhead. Used for batching and back-pressure only.
 */
export function estimateWriteBytes(writes: readonly GroupWrite[]): number {
  let bytes = 0;
  for (const w of writes) {
    if (w.hardState !== undefined) bytes += RECORD_OVERHEAD_BYTES + 8;
    if (w.snapshot !== undefined) {
      const c = w.snapshot.conf;
      bytes +=
        RECORD_OVERHEAD_BYTES +
        16 +
        8 * (c.voters.length + c.votersOutgoing.length + c.learners.length);
    }
    for (const e of w.entries ?? []) {
      const steps = e.confChange?.kind === 'change' ? e.confChange.steps.length : 0;
      bytes += RECORD_OVERHEAD_BYTES + e.data.length + 8 + 9 * steps;
    }
  }
  return bytes;
}

interface Pending {
  readonly writes: readonly GroupWrite[];
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** Batches appends from many async callers into shared syncs of one {@link LogStorage}. */
export class GroupCommitter {
  private readonly options: Required<GroupCommitOptions>;
  private readonly queue: Pending[] = [];
  private queuedBytes = 0;
  /** A batch window is open (a flush is scheduled). */
  private scheduled = false;
  private failure: unknown = null;
  private closed = false;
  private syncCount = 0;

  /** @param storage used by this committer alone while it is open (it never closes it). */
  constructor(
    private readonly storage: LogStorage,
    options: GroupCommitOptions = {},
  ) {
    this.options = { ...GROUP_COMMIT_DEFAULTS, ...options };
    const { waitMaxMicros, batchBytesMax, queuedBytesMax } = this.options;
    assert(waitMaxMicros >= 0, 'waitMaxMicros must be >= 0');
    assert(
      batchBytesMax > 0 && queuedBytesMax >= batchBytesMax,
      'need 0 < batchBytesMax <= queuedBytesMax',
    );
  }

  /** Syncs performed so far (for tests and metrics). */
  get syncs(): number {
    return this.syncCount;
  }

  /**
   * Stages `writes` (in call order relative to other appends) and resolves
   * once a sync covering them has completed, i.e. once they are durable.
   * Rejects with RESOURCE_EXHAUSTED if the queue is full, REQUEST_TOO_LARGE
   * if the writes alone exceed it, UNAVAILABLE after close(), or the
   * storage's error after a failure.
   */
  append(writes: readonly GroupWrite[]): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed)
      return Promise.reject(new TesseraError('UNAVAILABLE', 'group committer is closed'));
    const bytes = estimateWriteBytes(writes);
    const limit = this.options.queuedBytesMax;
    if (bytes > limit) {
      return Promise.reject(
        new TesseraError('REQUEST_TOO_LARGE', `log append of ${bytes} bytes exceeds ${limit}`, {
          limit,
          actual: bytes,
        }),
      );
    }
    if (this.queuedBytes + bytes > limit) {
      return Promise.reject(
        new TesseraError('RESOURCE_EXHAUSTED', 'log append queue is full', {
          limit,
          actual: this.queuedBytes + bytes,
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ writes, bytes, resolve, reject });
      this.queuedBytes += bytes;
      this.schedule();
    });
  }

  /**
   * Refuses further appends and syncs everything already queued at once.
   * Resolves when it is durable (or rejects with the storage's error). Does
   * not close the storage.
   */
  async close(): Promise<void> {
    this.closed = true;
    while (this.queue.length > 0 && this.failure === null) this.flushBatch();
    if (this.failure !== null) throw this.failure;
  }

  /** Opens a batch window unless one is open. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const openedNs = process.hrtime.bigint();
    const waitNs = BigInt(Math.round(this.options.waitMaxMicros * 1000));
    const tick = (): void => {
      const full = this.queuedBytes >= this.options.batchBytesMax;
      if (!full && process.hrtime.bigint() - openedNs < waitNs) {
        setImmediate(tick);
        return;
      }
      this.scheduled = false;
      this.flushBatch();
      if (this.queue.length > 0 && this.failure === null) this.schedule();
    };
    setImmediate(tick);
  }

  /** Writes and syncs the oldest appends, up to batchBytesMax (at least one). */
  private flushBatch(): void {
    const batch: Pending[] = [];
    let bytes = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (batch.length > 0 && bytes + next.bytes > this.options.batchBytesMax) break;
      batch.push(this.queue.shift()!);
      bytes += next.bytes;
    }
    if (batch.length === 0) return;
    this.queuedBytes -= bytes;
    try {
      for (const p of batch) this.storage.write(p.writes);
      this.storage.sync();
      this.syncCount++;
    } catch (e) {
      this.fail(e, batch);
      return;
    }
    for (const p of batch) p.resolve();
  }

  private fail(e: unknown, batch: readonly Pending[]): void {
    this.failure = e;
    for (const p of batch) p.reject(e);
    for (const p of this.queue.splice(0)) p.reject(e);
    this.queuedBytes = 0;
  }
}
