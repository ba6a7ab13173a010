/**
 * The log engine: one write-ahead log per node, shared by every Raft group
 * the node hosts (the design of TiKV's raft-engine). See docs/storage.md,
 * section "Log engine", for the file format and the rules below in prose.
 *
 * - **Files.** Segments `00000001.wal`, `00000002.wal`, … in one directory,
 *   append-only; records are framed and checksummed (record.ts, segment.ts).
 * - **Group commit.** `write()` encodes records into a staging buffer and
 *   updates the in-memory index at once (reads see staged writes); `sync()`
 *   appends everything staged in ONE append to the current segment and
 *   issues ONE fsync, whatever the number of groups. The runtime calls
 *   `write()` for every group's Ready and then `sync()` once.
 * - **Rolling.** At `sync()`, if the current segment already holds records
 *   and the staged bytes would take it past `segmentBytesMax`, a new segment
 *   is created (and its directory fsynced) and the bytes go there.
 * - **Index.** Per group: hard state, snapshot marker and compaction point
 *   as values, and for each live entry its location (segment, offset,
 *   length), not its payload (group-index.ts). `load()` reads entries back
 *   from the files through a small bounded cache of segment contents.
 * - **Recovery.** `LogEngine.open` replays every segment (recovery.ts); a
 *   torn tail of the last segment is truncated, any other damage throws
 *   CORRUPTION naming the file and byte offset.
 * - **Reclaiming space.** A segment older than every group's first live
 *   entry holds only dead entries, but may still hold a group's latest hard
 *   state, snapshot marker or compaction marker. Before deleting such
 *   segments the engine writes a *checkpoint*: those (small) records are
 *   written again into the current segment and fsynced. Then the old
 *   segments are deleted oldest first, each deletion made durable (directory
 *   fsync) before the next, so the files on disk are always a consecutive
 *   run of segments and replaying them rebuilds the same index.
 */
import { assert } from '../../core/assert.ts';
import { TesseraError } from '../../core/errors.ts';
import type { RangeId } from '../../core/ids.ts';
import { logIndex, NO_NODE, term } from '../../core/ids.ts';
import type { Entry, HardState, SnapshotMeta } from '../../raft/types.ts';
import type { AppendFile, FileSystem } from '../fs.ts';
import { joinPath } from '../fs.ts';
import type { GroupState, GroupWrite, LogStorage } from '../log-storage.ts';
import type { EntryLoc } from './group-index.ts';
import { GroupIndex } from './group-index.ts';
import { SegmentReadCache } from './read-cache.ts';
import { checkFrame, encodeRecord } from './record.ts';
import { recover } from './recovery.ts';
import type { RecordLoc } from './segment.ts';
import {
  corruption,
  decodeOrThrow,
  encodeSegmentHeader,
  SEGMENT_HEADER_BYTES,
  SEGMENT_SEQ_MAX,
  segmentFileName,
} from './segment.ts';

/** Tuning and limits of a {@link LogEngine}. */
export interface LogEngineOptions {
  /** Roll to a new segment once the current one would grow past this. Default 64 MiB. */
  readonly segmentBytesMax?: number;
  /**
   * Most bytes staged between two syncs. Exceeding it is a programmer error
   * (an assertion): callers bound what they write per sync (Raft bounds a
   * Ready; the GroupCommitter bounds a batch). Default 256 MiB.
   */
  readonly stagedBytesMax?: number;
  /** Most bytes of segment contents cached for `load()`. Default 128 MiB. */
  readonly readCacheBytesMax?: number;
  /**
   * Canary `ack-before-fsync` (src/raft/canaries.ts), for the simulator only:
   * `sync()` returns after the append and defers its fsync to the next
   * `sync()`, so a crash can lose writes that were reported durable. Never
   * set in production. Default false.
   */
  readonly ackBeforeFsync?: boolean;
}

/** Default values of {@link LogEngineOptions}. */
export const LOG_ENGINE_DEFAULTS: Required<LogEngineOptions> = Object.freeze({
  segmentBytesMax: 64 * 1024 * 1024,
  stagedBytesMax: 256 * 1024 * 1024,
  readCacheBytesMax: 128 * 1024 * 1024,
  ackBeforeFsync: false,
});

/** The smallest `segmentBytesMax` accepted. */
export const SEGMENT_BYTES_MIN = 256;

const EMPTY_HARD_STATE: HardState = Object.freeze({
  term: term(0),
  vote: NO_NODE,
  commit: logIndex(0),
});

/** What recovery had to cut off the last segment, if anything. */
export interface TornTail {
  readonly path: string;
  readonly reason: string;
}

/**
 * A {@link LogStorage} on segmented, checksummed, append-only files. Not
 * safe for concurrent use: one caller drives it (see GroupCommitter in
 * src/node/group-commit.ts for an async front end). After a failed append,
 * fsync or deletion the engine refuses further use: a restart recovers.
 */
export class LogEngine implements LogStorage {
  private readonly cache: SegmentReadCache;
  /** Bytes encoded by write()/compact() and not yet appended, in order. */
  private staged: Uint8Array[] = [];
  private stagedBytes = 0;
  private stagedLocs: RecordLoc[] = [];
  private stagedEntries: EntryLoc[] = [];
  /** Set when some segment may have become deletable; checked at the next sync. */
  private reclaimDue = true;
  /** Canary ack-before-fsync: bytes were appended and reported durable without an fsync. */
  private fsyncOwed = false;
  private closed = false;
  private failure: unknown = null;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly options: Required<LogEngineOptions>,
    private readonly groupsById: Map<RangeId, GroupIndex>,
    /** Segments on disk, ascending and consecutive; the last is the active one. */
    private readonly segments: number[],
    private active: AppendFile,
    /** Set if recovery truncated a torn tail (for logs and tests). */
    readonly tornTail: TornTail | null,
  ) {
    this.cache = new SegmentReadCache(options.readCacheBytesMax);
  }

  /**
   * Opens the log in `dir` (creating it if missing) and recovers: replays
   * every segment, truncates a torn tail of the last one, and throws a
   * CORRUPTION TesseraError naming the file and byte offset for any other
   * damage. Never skips data silently.
   */
  static open(fs: FileSystem, dir: string, options: LogEngineOptions = {}): LogEngine {
    const opts = { ...LOG_ENGINE_DEFAULTS, ...options };
    assert(
      Number.isSafeInteger(opts.segmentBytesMax) && opts.segmentBytesMax >= SEGMENT_BYTES_MIN,
      () => `segmentBytesMax must be an integer >= ${SEGMENT_BYTES_MIN}`,
    );
    assert(
      Number.isSafeInteger(opts.stagedBytesMax) && opts.stagedBytesMax > 0,
      'stagedBytesMax must be a positive integer',
    );
    const recovered = recover(fs, dir);
    const segments = recovered.segments;
    if (segments.length === 0) {
      segments.push(1);
      fs.openAppend(joinPath(dir, segmentFileName(1))).close();
      fs.fsyncDir(dir);
    }
    const activeSeq = segments[segments.length - 1]!;
    const active = fs.openAppend(joinPath(dir, segmentFileName(activeSeq)));
    return new LogEngine(fs, dir, opts, recovered.groups, segments, active, recovered.truncated);
  }

  /** {@inheritDoc LogStorage.write} */
  write(writes: readonly GroupWrite[]): void {
    this.checkUsable();
    for (const w of writes) {
      if (w.snapshot !== undefined) this.stageSnapshot(w.group, w.snapshot);
      if (w.entries !== undefined && w.entries.length > 0) this.stageEntries(w.group, w.entries);
      if (w.hardState !== undefined) this.stageHardState(w.group, w.hardState);
    }
  }

  /**
   * One append and one fsync for everything staged (after a roll to a new
   * segment if the current one is full). When segments may have become
   * deletable, also writes a checkpoint if needed (one more append and
   * fsync) and deletes them.
   */
  sync(): void {
    this.checkUsable();
    try {
      if (this.fsyncOwed) this.fsyncActive();
      if (this.staged.length > 0) {
        this.maybeRoll();
        this.flush(this.options.ackBeforeFsync);
      }
      if (this.reclaimDue) this.reclaim();
    } catch (e) {
      this.failure = e;
      throw e;
    }
  }

  /** {@inheritDoc LogStorage.groups} */
  groups(): RangeId[] {
    this.checkUsable();
    return [...this.groupsById.keys()].sort((a, b) => a - b);
  }

  /**
   * A group's state; entries that are synced are read back from the segment
   * files (and checked against their checksum and the index once more).
   */
  load(group: RangeId): GroupState {
    this.checkUsable();
    const g = this.groupsById.get(group);
    if (g === undefined) return { hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] };
    return {
      hardState: g.hardState ?? EMPTY_HARD_STATE,
      snapshot: g.snapshot,
      entries: g.entries.map((e) => e.staged ?? this.readEntry(group, e)),
    };
  }

  /**
   * Stages a compaction marker: entries at or below `index` are dropped
   * (`load()` returns entries from `index + 1`; callers normally write a
   * snapshot marker at or above `index` first, or hold the covering snapshot
   * elsewhere, e.g. in the state engine). A no-op if already compacted that
   * far. Asserts `index` does not pass the group's last index.
   */
  compact(group: RangeId, index: number): void {
    this.checkUsable();
    const g = this.groupsById.get(group);
    if (index < (g?.firstIndex() ?? 1)) return;
    assert(
      g !== undefined && index <= g.lastIndex(),
      () => `compact(${group}, ${index}) beyond the last index ${g?.lastIndex() ?? 0}`,
    );
    const at = logIndex(index);
    g.compact(at, this.stage(encodeRecord({ type: 'compaction', group, index: at })));
    this.reclaimDue = true;
  }

  /** Closes the current segment. Staged writes that were not synced are lost. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    this.active.close();
  }

  // The stage* methods check and encode everything before they change
  // anything, so a failed assertion leaves the engine as it was.

  private stageSnapshot(group: RangeId, snapshot: SnapshotMeta): void {
    const g = this.groupsById.get(group) ?? new GroupIndex();
    assert(
      snapshot.index >= g.firstIndex() - 1,
      () =>
        `group ${group}: snapshot ${snapshot.index} is behind the log start ${g.firstIndex() - 1}`,
    );
    // The entries after the marker survive only if they follow it (GroupWrite.snapshot).
    const keepFollowing = g.termAt(snapshot.index) === snapshot.term;
    const bytes = encodeRecord({ type: 'snapshot', group, snapshot, keepFollowing });
    g.setSnapshot(snapshot, keepFollowing, this.stage(bytes));
    this.groupsById.set(group, g);
    this.reclaimDue = true;
  }

  private stageEntries(group: RangeId, entries: readonly Entry[]): void {
    const g = this.groupsById.get(group) ?? new GroupIndex();
    const first = entries[0]!;
    assert(
      first.index >= g.firstIndex() && first.index <= g.lastIndex() + 1,
      () =>
        `group ${group}: entries from ${first.index} do not fit the log [${g.firstIndex()}, ${g.lastIndex()}]`,
    );
    entries.forEach((e, k) =>
      assert(
        e.index === first.index + k,
        () => `group ${group}: entries not contiguous at ${e.index}`,
      ),
    );
    const encoded = entries.map((entry) => encodeRecord({ type: 'entry', group, entry }));
    this.checkStagedBytes(encoded.reduce((n, b) => n + b.length, 0));
    // Replacing the first live entry may free the segment that held it.
    if (g.entries.length > 0 && first.index <= g.entries[0]!.index) this.reclaimDue = true;
    entries.forEach((entry, k) => {
      const el: EntryLoc = {
        index: entry.index,
        term: entry.term,
        loc: this.stage(encoded[k]!),
        staged: entry,
      };
      this.stagedEntries.push(el);
      const problem = g.putEntry(el);
      assert(problem === undefined, () => `group ${group}: ${problem}`);
    });
    this.groupsById.set(group, g);
  }

  private stageHardState(group: RangeId, hardState: HardState): void {
    const g = this.groupsById.get(group) ?? new GroupIndex();
    g.setHardState(hardState, this.stage(encodeRecord({ type: 'hard-state', group, hardState })));
    this.groupsById.set(group, g);
  }

  /** Adds an encoded record to the staging buffer; its location is fixed at the next flush. */
  private stage(bytes: Uint8Array): RecordLoc {
    this.checkStagedBytes(bytes.length);
    const loc: RecordLoc = { seq: 0, offset: this.stagedBytes, lengthBytes: bytes.length };
    this.staged.push(bytes);
    this.stagedLocs.push(loc);
    this.stagedBytes += bytes.length;
    return loc;
  }

  private checkStagedBytes(more: number): void {
    assert(
      this.stagedBytes + more <= this.options.stagedBytesMax,
      () =>
        `staged bytes would exceed stagedBytesMax (${this.options.stagedBytesMax}); sync more often`,
    );
  }

  private maybeRoll(): void {
    const size = this.active.size();
    if (size > SEGMENT_HEADER_BYTES && size + this.stagedBytes > this.options.segmentBytesMax) {
      this.roll();
    }
  }

  /** Creates the next segment (durably) and makes it the active one. */
  private roll(): void {
    const seq = this.activeSeq() + 1;
    assert(seq <= SEGMENT_SEQ_MAX, 'segment sequence numbers exhausted');
    const next = this.fs.openAppend(this.segmentPath(seq));
    this.fs.fsyncDir(this.dir);
    if (this.fsyncOwed) this.fsyncActive();
    this.active.close();
    this.active = next;
    this.segments.push(seq);
    this.reclaimDue = true;
  }

  /**
   * Group commit: one append of every staged byte, one fsync (deferred to
   * the next sync only under the ack-before-fsync canary); then the staged
   * records get their locations.
   */
  private flush(deferFsync = false): void {
    const seq = this.activeSeq();
    const header = this.active.size() === 0 ? encodeSegmentHeader(seq) : new Uint8Array(0);
    const base = this.active.size() + header.length;
    const buf = new Uint8Array(header.length + this.stagedBytes);
    buf.set(header, 0);
    let at = header.length;
    for (const chunk of this.staged) {
      buf.set(chunk, at);
      at += chunk.length;
    }
    this.active.append(buf);
    if (deferFsync) this.fsyncOwed = true;
    else this.fsyncActive();
    this.cache.invalidate(seq);
    for (const loc of this.stagedLocs) {
      loc.seq = seq;
      loc.offset += base;
    }
    for (const e of this.stagedEntries) e.staged = null;
    this.staged = [];
    this.stagedLocs = [];
    this.stagedEntries = [];
    this.stagedBytes = 0;
  }

  private fsyncActive(): void {
    this.active.fsync();
    this.fsyncOwed = false;
  }

  /**
   * Deletes the segments older than every group's first live entry (never
   * the active one), after checkpointing the state records they still hold.
   */
  private reclaim(): void {
    this.reclaimDue = false;
    let bound = this.activeSeq();
    for (const g of this.groupsById.values()) bound = Math.min(bound, g.oldestEntrySeq());
    assert(bound >= 1, 'reclaim with staged entries');
    const dead = this.segments.filter((seq) => seq < bound);
    if (dead.length === 0) return;
    this.checkpoint(bound);
    for (const seq of dead) {
      // Oldest first, each deletion durable before the next: the files left
      // on disk are always a consecutive run, which recovery checks.
      this.fs.unlink(this.segmentPath(seq));
      this.fs.fsyncDir(this.dir);
      this.cache.invalidate(seq);
      this.segments.shift();
    }
  }

  /**
   * Writes again, into the active segment, every hard state, snapshot marker
   * and compaction marker whose latest record lies in a segment below
   * `bound`, and makes them durable. The rewritten snapshot marker keeps the
   * following entries: they were written after the original marker, so they
   * follow it.
   */
  private checkpoint(bound: number): void {
    for (const [group, g] of this.groupsById) {
      if (g.snapshot !== null && g.snapshotLoc!.seq < bound) {
        const snapshot = g.snapshot;
        const bytes = encodeRecord({ type: 'snapshot', group, snapshot, keepFollowing: true });
        g.setSnapshot(snapshot, true, this.stage(bytes));
      }
      if (g.compactLoc !== null && g.compactLoc.seq < bound) {
        const index = g.compactIndex;
        g.compact(index, this.stage(encodeRecord({ type: 'compaction', group, index })));
      }
      if (g.hardState !== null && g.hardStateLoc!.seq < bound) {
        const hardState = g.hardState;
        g.setHardState(
          hardState,
          this.stage(encodeRecord({ type: 'hard-state', group, hardState })),
        );
      }
    }
    if (this.staged.length > 0) this.flush();
  }

  /**
   * Reads a synced entry back from its segment, checking it is the one the
   * index expects. A failed check is retried once with a fresh read (a read
   * fault may be transient) before it is reported as CORRUPTION.
   */
  private readEntry(group: RangeId, e: EntryLoc): Entry {
    try {
      return this.readEntryOnce(group, e);
    } catch (err) {
      if (!(err instanceof TesseraError && err.code === 'CORRUPTION')) throw err;
      this.cache.invalidate(e.loc.seq);
      return this.readEntryOnce(group, e);
    }
  }

  private readEntryOnce(group: RangeId, e: EntryLoc): Entry {
    const { seq, offset, lengthBytes } = e.loc;
    const path = this.segmentPath(seq);
    const bytes = this.cache.get(seq, () => this.fs.readFile(path));
    const frame = checkFrame(bytes, offset);
    if (!frame.ok) throw corruption(path, offset, frame.reason);
    if (frame.lengthBytes !== lengthBytes) {
      throw corruption(path, offset, `record length ${frame.lengthBytes}, expected ${lengthBytes}`);
    }
    const record = decodeOrThrow(bytes, path, offset, lengthBytes);
    if (
      record.type !== 'entry' ||
      record.group !== group ||
      record.entry.index !== e.index ||
      record.entry.term !== e.term
    ) {
      throw corruption(
        path,
        offset,
        `expected entry ${e.index} (term ${e.term}) of group ${group}`,
      );
    }
    return { ...record.entry, data: record.entry.data.slice() };
  }

  private activeSeq(): number {
    return this.segments[this.segments.length - 1]!;
  }

  private segmentPath(seq: number): string {
    return joinPath(this.dir, segmentFileName(seq));
  }

  private checkUsable(): void {
    assert(!this.closed, 'log engine used after close()');
    if (this.failure !== null) throw this.failure;
  }
}
