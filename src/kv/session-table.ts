/**
 * The exactly-once client session table of one range, with deterministic
 * expiry (Raft thesis §6.3).
 *
 * Per client id the table keeps the last sequence number applied, its
 * result, and when the session was last used by the *log clock*: the
 * largest proposer timestamp (`KvCommand.at`) applied so far. Expiry depends
 * on that clock only, never on a replica's own clock, so it is a pure
 * function of the applied log: every replica, and a replica restored from a
 * snapshot, expires the same sessions at the same log entries.
 *
 * A session idle for more than {@link SessionLimits.idleMs} of log time is
 * expired; a new session beyond {@link SessionLimits.sessionsMax} evicts the
 * least recently used one. Both find their victims through a stored index
 * ordered by last use, and do bounded work per applied command.
 *
 * Contract for clients: a command whose session has expired or was evicted
 * is applied as a new one, so a client must not retry a write for longer
 * than the idle window (the TypeScript client gives up on a call after its
 * `deadlineMs`: 20 s by default, at most `DEADLINE_MS_MAX`, 5 minutes, in
 * src/client/options.ts). A proposer's clock
 * far ahead of true time shortens the window for everyone, as in §6.3.
 *
 * Keys inside the range (the state machine owns the 'd' data prefix):
 *
 *   's' client                  -> session record (seq, result, usedMs, touch)
 *   'l' usedMs:u64 touch:u64    -> client (the index by last use)
 *   'm' "sessions"              -> table meta (log clock, counters)
 *
 * `touch` numbers the index writes of the range, so that every new index
 * key sorts after every existing one (the log clock never goes back): the
 * index in the batch being applied is the committed index minus what the
 * batch deleted, followed by what it added, in order.
 */
import { pack, unpack } from 'msgpackr';
import { assert } from '../core/assert.ts';
import type { KvResult } from './command.ts';

/** Log time a session may stay unused before it expires: 10 minutes. */
export const SESSION_IDLE_MS = 10 * 60_000;
/** Sessions kept per range; a new one beyond this evicts the least recently used. */
export const SESSIONS_MAX = 100_000;
/**
 * Sessions expired or evicted at most per applied command. Above one, so
 * that a backlog (after a jump of the log clock) drains faster than
 * commands can create sessions.
 */
export const SESSION_EXPIRATIONS_PER_COMMAND_MAX = 8;

/**
 * Limits of the session table. They are part of the state machine's
 * definition: every replica of a range must use the same values, or the
 * replicas' session tables (and so their answers to retries) diverge.
 */
export interface SessionLimits {
  /** Log time after which an unused session expires, in ms. Positive integer. */
  readonly idleMs: number;
  /** Sessions kept per range. Positive integer. */
  readonly sessionsMax: number;
  /** Expirations and evictions per applied command. Integer, at least 2. */
  readonly expirationsPerCommandMax: number;
}

/** The production limits. */
export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  idleMs: SESSION_IDLE_MS,
  sessionsMax: SESSIONS_MAX,
  expirationsPerCommandMax: SESSION_EXPIRATIONS_PER_COMMAND_MAX,
};

/** Asserts that `limits` are usable (they come from code, not from requests). */
export function checkSessionLimits(limits: SessionLimits): void {
  assert(Number.isSafeInteger(limits.idleMs) && limits.idleMs > 0, 'idleMs must be positive');
  assert(
    Number.isSafeInteger(limits.sessionsMax) && limits.sessionsMax > 0,
    'sessionsMax must be positive',
  );
  assert(
    Number.isSafeInteger(limits.expirationsPerCommandMax) && limits.expirationsPerCommandMax >= 2,
    'expirationsPerCommandMax must be at least 2',
  );
}

/** Counters of a range's session table (replicated: equal on every replica at one index). */
export interface SessionStats {
  /** Sessions in the table (records written before expiry existed are counted once used again). */
  readonly live: number;
  /** Sessions removed for being idle longer than the window, since the range began. */
  readonly expiredTotal: number;
  /** Sessions evicted by the {@link SessionLimits.sessionsMax} cap, since the range began. */
  readonly evictedTotal: number;
  /** The log clock: the largest `at` applied, ms; 0 before any. */
  readonly logClockMs: number;
}

/** A session as stored. */
export interface Session {
  readonly seq: number;
  readonly result: KvResult;
  /** Log clock at the session's last use; absent in records written before expiry existed. */
  readonly usedMs?: number;
  /** The touch number of its index key (present with usedMs). */
  readonly touch?: number;
}

/** The table's meta record. */
interface Meta {
  clockMs: number;
  /**
   * The first `at` ever applied (0 before). Sessions last used before it
   * were used when the log carried no time: they count as used then, not
   * at log time 0, so the first stamped entry does not expire them all.
   */
  clockStartMs: number;
  /** The next touch number. */
  touch: number;
  live: number;
  expiredTotal: number;
  evictedTotal: number;
}

/** Reads and writes of the batch being applied, as the state machine provides them. */
export interface SessionStore {
  /** The current value of a key, the batch's changes included. */
  get(key: Uint8Array): Uint8Array | undefined;
  /** Stages a put (or a delete: null) in the batch. */
  set(key: Uint8Array, value: Uint8Array | null): void;
  /** Committed pairs with start <= key < end, in key order, at most `limit`; the batch not included. */
  scanCommitted(start: Uint8Array, end: Uint8Array, limit: number): Array<[Uint8Array, Uint8Array]>;
}

const SESSION = 0x73; // 's'
const INDEX = 0x6c; // 'l'
const META = 0x6d; // 'm'
const INDEX_KEY_BYTES = 1 + 8 + 8;
/** Committed index entries read per scan. */
const INDEX_PAGE = 16;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The key of a client's session record. */
export function sessionKey(client: number): Uint8Array {
  const body = encoder.encode(String(client));
  const out = new Uint8Array(body.length + 1);
  out[0] = SESSION;
  out.set(body, 1);
  return out;
}

const META_KEY = new Uint8Array([META, ...encoder.encode('sessions')]);
const INDEX_START = new Uint8Array([INDEX]);
const INDEX_END = new Uint8Array([INDEX + 1]);

function indexKey(usedMs: number, touch: number): Uint8Array {
  const out = new Uint8Array(INDEX_KEY_BYTES);
  const view = new DataView(out.buffer);
  out[0] = INDEX;
  // Big-endian u64s: byte order is numeric order.
  view.setUint32(1, Math.floor(usedMs / 2 ** 32));
  view.setUint32(5, usedMs % 2 ** 32);
  view.setUint32(9, Math.floor(touch / 2 ** 32));
  view.setUint32(13, touch % 2 ** 32);
  return out;
}

function usedMsOf(key: Uint8Array): number {
  const view = new DataView(key.buffer, key.byteOffset, key.length);
  return view.getUint32(1) * 2 ** 32 + view.getUint32(5);
}

/** The smallest key greater than `key`. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

const sameKey = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** One entry of the index by last use. */
interface IndexEntry {
  readonly key: Uint8Array;
  readonly client: number;
  readonly usedMs: number;
}

function decodeMeta(raw: Uint8Array | undefined): Meta {
  if (raw === undefined) {
    return { clockMs: 0, clockStartMs: 0, touch: 0, live: 0, expiredTotal: 0, evictedTotal: 0 };
  }
  return unpack(raw) as Meta;
}

/** The counters of a session table, from any store view. */
export function readSessionStats(get: (key: Uint8Array) => Uint8Array | undefined): SessionStats {
  const m = decodeMeta(get(META_KEY));
  return {
    live: m.live,
    expiredTotal: m.expiredTotal,
    evictedTotal: m.evictedTotal,
    logClockMs: m.clockMs,
  };
}

/**
 * The session table during one applied batch: created when the batch
 * begins, {@link finish}ed before it commits. Every method is a pure
 * function of the store's contents and its arguments.
 */
export class SessionTable {
  private readonly meta: Meta;
  private metaChanged = false;
  /** Committed index keys below this were deleted by the batch (they are never reused). */
  private cursor: Uint8Array = INDEX_START;
  /** Index entries the batch added and still holds, oldest first (insertion order). */
  private readonly added = new Map<string, IndexEntry>();
  /** The oldest index entry: undefined = not known, null = the index is empty. */
  private head: IndexEntry | null | undefined = undefined;

  constructor(
    private readonly store: SessionStore,
    private readonly limits: SessionLimits,
  ) {
    this.meta = decodeMeta(store.get(META_KEY));
  }

  /**
   * Moves the log clock to `at` if that is later (an entry without `at`
   * leaves it), then expires up to the per-command bound of sessions idle
   * for more than the window. Call once per applied command, before
   * looking its session up.
   */
  advance(at: number | undefined): void {
    const m = this.meta;
    if (at !== undefined && at > m.clockMs) {
      if (m.clockStartMs === 0) m.clockStartMs = at;
      m.clockMs = at;
      this.metaChanged = true;
    }
    for (let i = 0; i < this.limits.expirationsPerCommandMax; i++) {
      const oldest = this.oldest();
      if (oldest === null) return;
      const lastUsedMs = Math.max(oldest.usedMs, m.clockStartMs);
      if (m.clockMs - lastUsedMs <= this.limits.idleMs) return;
      this.remove(oldest);
      m.expiredTotal++;
    }
  }

  /** The log clock: the largest proposer stamp applied so far, in ms (0 before any). */
  get clockMs(): number {
    return this.meta.clockMs;
  }

  /** The client's session, or undefined if it has none (new, expired or evicted). */
  get(client: number): Session | undefined {
    const raw = this.store.get(sessionKey(client));
    return raw === undefined ? undefined : (unpack(raw) as Session);
  }

  /**
   * Records that `client` applied `seq` with `result` now (by the log
   * clock). `previous` is what {@link get} returned. A new session beyond
   * the cap first evicts the least recently used ones (within the bound;
   * the table exceeds the cap only if the cap was lowered, and then shrinks).
   */
  record(client: number, seq: number, result: KvResult, previous: Session | undefined): void {
    if (previous === undefined) {
      for (
        let i = 0;
        i < this.limits.expirationsPerCommandMax && this.meta.live >= this.limits.sessionsMax;
        i++
      ) {
        const oldest = this.oldest();
        if (oldest === null) break;
        this.remove(oldest);
        this.meta.evictedTotal++;
      }
    }
    this.write(client, seq, result, previous);
  }

  /** The session was used again without a new result (a duplicate or a stale command). */
  reuse(client: number, session: Session): void {
    this.write(client, session.seq, session.result, session);
  }

  /** Stages the meta record if it changed. Call once, after the batch's last command. */
  finish(): void {
    if (this.metaChanged) this.store.set(META_KEY, pack(this.meta));
  }

  private write(
    client: number,
    seq: number,
    result: KvResult,
    previous: Session | undefined,
  ): void {
    const m = this.meta;
    if (previous?.usedMs !== undefined) {
      this.dropIndex(indexKey(previous.usedMs, previous.touch!));
    } else {
      // A new session, or a record from before expiry existed: not yet counted or indexed.
      m.live++;
    }
    const usedMs = m.clockMs;
    const touch = m.touch++;
    this.metaChanged = true;
    const key = indexKey(usedMs, touch);
    this.store.set(key, encoder.encode(String(client)));
    const entry: IndexEntry = { key, client, usedMs };
    this.added.set(latin1(key), entry);
    if (this.head === null) this.head = entry;
    this.store.set(sessionKey(client), pack({ seq, result, usedMs, touch } satisfies Session));
  }

  /** Deletes a session and its index entry. */
  private remove(entry: IndexEntry): void {
    this.store.set(sessionKey(entry.client), null);
    this.dropIndex(entry.key);
    this.meta.live--;
    this.metaChanged = true;
    assert(this.meta.live >= 0, 'session count below zero');
  }

  private dropIndex(key: Uint8Array): void {
    this.store.set(key, null);
    this.added.delete(latin1(key));
    if (this.head !== null && this.head !== undefined && sameKey(this.head.key, key)) {
      this.head = undefined;
    }
  }

  /** The least recently used session's index entry, or null if there is none. */
  private oldest(): IndexEntry | null {
    if (this.head !== undefined) return this.head;
    this.head = this.findOldest();
    return this.head;
  }

  private findOldest(): IndexEntry | null {
    for (;;) {
      const rows = this.store.scanCommitted(this.cursor, INDEX_END, INDEX_PAGE);
      for (const [key, value] of rows) {
        if (this.store.get(key) !== undefined) {
          return { key, client: Number(decoder.decode(value)), usedMs: usedMsOf(key) };
        }
        // Deleted by this batch: skip it for the rest of the batch.
        this.cursor = successor(key);
      }
      if (rows.length < INDEX_PAGE) break;
    }
    // Every committed entry is older than every entry the batch added.
    const first = this.added.values().next();
    return first.done === true ? null : first.value;
  }
}

const latin1 = (key: Uint8Array): string =>
  Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
