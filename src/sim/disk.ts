/**
 * A simulated disk: an in-memory {@link FileSystem} that loses, on
 * {@link SimDisk.crash}, exactly what the durability rules of
 * `src/storage/fs.ts` allow it to lose, and nothing more.
 *
 * Like tigerbeetle's `src/testing/storage.zig`, the faults are chosen so that
 * correct storage code can always recover: a crash only takes away what was
 * never made durable (torn writes keep a prefix of the unsynced tail, never
 * bytes out of order, never durable bytes), and a read bit flip is transient
 * (the stored bytes stay intact, so a checksum failure followed by a re-read
 * recovers). Pure TypeScript with no `node:*` imports: it runs inside the
 * deterministic simulator and draws all randomness from an injected
 * {@link Rng}.
 *
 * Model:
 * - A tree of directories and files. Each directory keeps its current entry
 *   set and its durable entry set (as of its last `fsyncDir`); entries map
 *   names to objects, so a rename moves the object and open handles follow
 *   it.
 * - Each file keeps its current bytes and its durable length (as of its last
 *   `fsync`). Bytes below the durable length equal the durable content unless
 *   an unsynced truncate cut into them, in which case the durable content is
 *   saved aside until the next fsync or crash.
 *
 * Semantics decisions (where the interface leaves room):
 * - Opening the same path twice gives two handles on the same file object:
 *   their appends interleave in call order, `size()` is the file's size, and
 *   `fsync` through either handle makes every byte appended through any
 *   handle durable (fsync flushes the file, not the descriptor). Closing one
 *   handle does not affect the other.
 * - Handles stay valid after their file is unlinked or renamed (POSIX); they
 *   become invalid after a crash or `close()`, and using one then throws
 *   `EBADF`.
 * - `mkdirp` is durable at once: each directory it creates is made durable as
 *   if followed by `fsyncDir` of its parent (which also makes every other
 *   pending change in that parent durable). `src/node/fs.ts` must match this
 *   by fsyncing the parent of every directory it creates.
 * - Directories cannot be renamed or unlinked (`ENOTSUP` / `EISDIR`): the
 *   storage layer has no need for it, and modelling unsynced directory moves
 *   would let a crash produce directory cycles.
 * - `truncate` to a larger size extends with zero bytes, like Node; the
 *   extension counts as appended bytes (it may be torn on crash).
 * - A truncate below the durable length that is not fsynced is lost on crash:
 *   the file reverts to its durable content, with no torn tail.
 * - A file renamed across directories with only the target directory
 *   fsynced survives a crash under both names, as one shared object (like a
 *   hard link); POSIX promises nothing better without both fsyncs.
 * - Paths are '/'-separated and resolved from one root; a leading '/', empty
 *   segments and '.' are ignored and '..' goes up (never above the root).
 */
import { assert, assertNever } from '../core/assert.ts';
import type { Rng } from '../core/rng.ts';
import type { AppendFile, FileSystem } from '../storage/fs.ts';

/** Which faults a {@link SimDisk} injects. */
export interface SimDiskFaults {
  /** On crash, keep a random prefix of each file's unsynced bytes instead of dropping them all. */
  tornWrites: boolean;
  /** Probability that one readFile returns the content with one bit flipped (a transient read fault; the stored bytes stay intact). */
  readBitFlipRate: number;
}

/** Counters of a {@link SimDisk} since it was constructed. */
export interface SimDiskStats {
  /** Bytes passed to `append` (zero-fill by an extending truncate not included). */
  readonly bytesWritten: number;
  /** Calls of `AppendFile.fsync`. */
  readonly fsyncs: number;
  /** Calls of `fsyncDir`, plus the implicit ones made by `mkdirp`. */
  readonly dirFsyncs: number;
  readonly crashes: number;
  /** Crashes in which at least one file kept a torn write. */
  readonly tornCrashes: number;
  /** Files that kept some, but not all, of their unsynced bytes across a crash. */
  readonly tornFiles: number;
  /** Reads that returned one flipped bit. */
  readonly readBitFlips: number;
}

/** Error codes a {@link SimDisk} throws, with Node's meanings. */
export type SimFsErrorCode =
  'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'EBADF' | 'EINVAL' | 'ENOTSUP';

const ERROR_DESCRIPTIONS: Readonly<Record<SimFsErrorCode, string>> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EBADF: 'bad file descriptor',
  EINVAL: 'invalid argument',
  ENOTSUP: 'operation not supported',
};

/**
 * An operational file system error, shaped like Node's: `code`, `syscall`
 * and `path` properties and a message such as
 * `ENOENT: no such file or directory, open 'data/log'`.
 */
export class SimFsError extends Error {
  override readonly name = 'SimFsError';

  constructor(
    readonly code: SimFsErrorCode,
    readonly syscall: string,
    readonly path: string,
    detail?: string,
  ) {
    const suffix = detail === undefined ? '' : ` (${detail})`;
    super(`${code}: ${ERROR_DESCRIPTIONS[code]}, ${syscall} '${path}'${suffix}`);
  }
}

/** Write latency: usually a page-cache copy, occasionally stalled. */
const WRITE_LATENCY_MS = { min: 0.01, max: 0.1, slowChance: 0.01, slowMax: 2 } as const;
/** Fsync latency: 0.5-5 ms, occasionally a slow device flush up to 50 ms. */
const FSYNC_LATENCY_MS = { min: 0.5, max: 5, slowChance: 0.02, slowMax: 50 } as const;

/** The smallest buffer a file grows into, in bytes. */
const FILE_CAPACITY_MIN_BYTES = 64;

/** Counters shared by a disk and its handles; `crashes` doubles as the handle epoch. */
interface Counters {
  bytesWritten: number;
  fsyncs: number;
  dirFsyncs: number;
  crashes: number;
  tornCrashes: number;
  tornFiles: number;
  readBitFlips: number;
}

/** One file's bytes: current content plus what a crash would leave. */
class SimFile {
  readonly kind = 'file';
  /** Current content is `bytes[0, length)`; the rest is spare capacity. */
  private bytes = new Uint8Array(FILE_CAPACITY_MIN_BYTES);
  private length = 0;
  /**
   * Length of the durable content. While `durableSaved` is null, the durable
   * content is `bytes[0, durableLength)` and `length >= durableLength`.
   */
  private durableLength = 0;
  /** The durable content, saved when an unsynced truncate cut below `durableLength`. */
  private durableSaved: Uint8Array | null = null;

  size(): number {
    return this.length;
  }

  /** A copy of the current content. */
  content(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }

  append(data: Uint8Array): void {
    this.reserve(this.length + data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  truncate(size: number): void {
    if (size < this.durableLength && this.durableSaved === null) {
      this.durableSaved = this.bytes.slice(0, this.durableLength);
    }
    if (size > this.length) {
      this.reserve(size);
      this.bytes.fill(0, this.length, size);
    }
    this.length = size;
  }

  fsync(): void {
    this.durableLength = this.length;
    this.durableSaved = null;
  }

  /**
   * Reverts to the durable content, keeping the first `keepBytes(unsynced)`
   * of the unsynced appended bytes when there is no unsynced truncate below
   * the durable length. What survives is durable from then on. Returns
   * whether the file kept a torn write (some, but not all, unsynced bytes).
   */
  crash(keepBytes: (unsyncedBytes: number) => number): boolean {
    if (this.durableSaved !== null) {
      // The truncate was not fsynced: it is lost, and so is everything after it.
      const durable = this.durableSaved;
      this.durableSaved = null;
      this.length = 0;
      this.append(durable);
      this.durableLength = durable.length;
      return false;
    }
    assert(this.length >= this.durableLength, 'file shorter than its durable content');
    const unsynced = this.length - this.durableLength;
    const kept = unsynced === 0 ? 0 : keepBytes(unsynced);
    assert(
      Number.isInteger(kept) && kept >= 0 && kept <= unsynced,
      () => `torn write keeps ${kept} of ${unsynced} bytes`,
    );
    this.length = this.durableLength + kept;
    this.durableLength = this.length;
    return kept > 0 && kept < unsynced;
  }

  private reserve(capacity: number): void {
    if (capacity <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(capacity, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}

/** A directory: current entries, and the entries as of its last fsyncDir. */
class SimDir {
  readonly kind = 'dir';
  current = new Map<string, SimNode>();
  durable = new Map<string, SimNode>();

  fsyncDir(): void {
    this.durable = new Map(this.current);
  }
}

type SimNode = SimFile | SimDir;

/** A handle appending to one {@link SimFile}; valid until closed or until the disk crashes. */
class SimAppendFile implements AppendFile {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly file: SimFile,
    private readonly counters: Counters,
    private readonly epoch: number,
  ) {}

  append(data: Uint8Array): void {
    this.check('write');
    this.file.append(data);
    this.counters.bytesWritten += data.length;
  }

  fsync(): void {
    this.check('fsync');
    this.file.fsync();
    this.counters.fsyncs++;
  }

  size(): number {
    this.check('fstat');
    return this.file.size();
  }

  close(): void {
    this.check('close');
    this.closed = true;
  }

  private check(syscall: string): void {
    if (this.closed) throw new SimFsError('EBADF', syscall, this.path, 'handle closed');
    if (this.epoch !== this.counters.crashes) {
      throw new SimFsError('EBADF', syscall, this.path, 'handle invalidated by a crash');
    }
  }
}

/**
 * An in-memory {@link FileSystem} with crash semantics and injected faults;
 * see the module comment for the model and its semantics decisions.
 *
 * `faults` is read live, not copied: the simulator may change the rates
 * between phases (for example switch faults off for a liveness phase).
 */
export class SimDisk implements FileSystem {
  private readonly root = new SimDir();
  private readonly counters: Counters = {
    bytesWritten: 0,
    fsyncs: 0,
    dirFsyncs: 0,
    crashes: 0,
    tornCrashes: 0,
    tornFiles: 0,
    readBitFlips: 0,
  };

  constructor(
    private readonly rng: Rng,
    private readonly faults: SimDiskFaults,
  ) {
    this.checkFaults();
  }

  /** Faults injected so far: torn files on crash plus read bit flips. */
  get faultsInjected(): number {
    return this.counters.tornFiles + this.counters.readBitFlips;
  }

  /** A snapshot of the counters. */
  stats(): SimDiskStats {
    return { ...this.counters };
  }

  /**
   * A plausible latency in milliseconds for one operation of `kind`, drawn
   * from the rng: a write is a page-cache copy (0.01-0.1 ms, 1% up to 2 ms);
   * an fsync takes 0.5-5 ms, 2% of the time slow up to 50 ms. The disk
   * itself completes every operation at once; the simulator uses this to
   * delay when it reports completion.
   */
  latencyMs(kind: 'write' | 'fsync'): number {
    switch (kind) {
      case 'write':
        return this.drawLatencyMs(WRITE_LATENCY_MS);
      case 'fsync':
        return this.drawLatencyMs(FSYNC_LATENCY_MS);
      default:
        return assertNever(kind, 'latency kind');
    }
  }

  /**
   * Simulates a power loss: every file reverts to its durable content (with
   * `tornWrites`, plus a random prefix of its unsynced appended bytes), every
   * directory reverts to its durable entries, and every open handle becomes
   * invalid. What survives is durable from then on.
   */
  crash(): void {
    this.checkFaults();
    this.counters.crashes++;
    const files = new Set<SimFile>();
    this.revertDir(this.root, files);
    const keepBytes = (unsynced: number): number =>
      this.faults.tornWrites ? this.rng.int(0, unsynced) : 0;
    let torn = 0;
    for (const file of files) {
      if (file.crash(keepBytes)) torn++;
    }
    this.counters.tornFiles += torn;
    if (torn > 0) this.counters.tornCrashes++;
  }

  mkdirp(dir: string): void {
    const names = parsePath(dir);
    let at = this.root;
    for (const [i, name] of names.entries()) {
      const next = at.current.get(name);
      if (next === undefined) {
        const created = new SimDir();
        at.current.set(name, created);
        at.fsyncDir();
        this.counters.dirFsyncs++;
        at = created;
      } else if (next.kind === 'dir') {
        at = next;
      } else {
        throw new SimFsError(i === names.length - 1 ? 'EEXIST' : 'ENOTDIR', 'mkdir', dir);
      }
    }
  }

  list(dir: string): string[] {
    return [...this.dirAt(dir, 'scandir').current.keys()].sort();
  }

  exists(path: string): boolean {
    return this.lookup(path) !== undefined;
  }

  readFile(path: string): Uint8Array {
    const content = this.fileAt(path, 'open').content();
    this.checkFaults();
    const rate = this.faults.readBitFlipRate;
    if (rate > 0 && content.length > 0 && this.rng.chance(rate)) {
      const bit = this.rng.int(0, content.length * 8 - 1);
      content[bit >>> 3]! ^= 1 << (bit & 7);
      this.counters.readBitFlips++;
    }
    return content;
  }

  openAppend(path: string): AppendFile {
    const { parent, name } = this.parentOf(path, 'open');
    const found = parent.current.get(name);
    let file: SimFile;
    if (found === undefined) {
      file = new SimFile();
      parent.current.set(name, file);
    } else if (found.kind === 'dir') {
      throw new SimFsError('EISDIR', 'open', path);
    } else {
      file = found;
    }
    return new SimAppendFile(path, file, this.counters, this.counters.crashes);
  }

  truncate(path: string, size: number): void {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new SimFsError('EINVAL', 'ftruncate', path, `size ${size}`);
    }
    this.fileAt(path, 'open').truncate(size);
  }

  unlink(path: string): void {
    const { parent, name } = this.parentOf(path, 'unlink');
    const found = parent.current.get(name);
    if (found === undefined) throw new SimFsError('ENOENT', 'unlink', path);
    if (found.kind === 'dir') throw new SimFsError('EISDIR', 'unlink', path);
    parent.current.delete(name);
  }

  rename(from: string, to: string): void {
    const source = this.parentOf(from, 'rename');
    const file = source.parent.current.get(source.name);
    if (file === undefined) throw new SimFsError('ENOENT', 'rename', from);
    if (file.kind === 'dir') {
      throw new SimFsError('ENOTSUP', 'rename', from, 'SimDisk does not rename directories');
    }
    const target = this.parentOf(to, 'rename');
    const replaced = target.parent.current.get(target.name);
    if (replaced?.kind === 'dir') throw new SimFsError('EISDIR', 'rename', to);
    if (replaced === file) return; // Same file: POSIX rename does nothing.
    source.parent.current.delete(source.name);
    target.parent.current.set(target.name, file);
  }

  fsyncDir(dir: string): void {
    this.dirAt(dir, 'fsync').fsyncDir();
    this.counters.dirFsyncs++;
  }

  /** Restores `dir` and the directories durably under it; collects their durable files. */
  private revertDir(dir: SimDir, files: Set<SimFile>): void {
    dir.current = new Map(dir.durable);
    // Sorted, so the rng draws of torn writes do not depend on creation order.
    for (const name of [...dir.durable.keys()].sort()) {
      const child = dir.durable.get(name)!;
      if (child.kind === 'dir') this.revertDir(child, files);
      else files.add(child);
    }
  }

  private drawLatencyMs(shape: {
    min: number;
    max: number;
    slowChance: number;
    slowMax: number;
  }): number {
    const slow = this.rng.chance(shape.slowChance);
    const [lo, hi] = slow ? [shape.max, shape.slowMax] : [shape.min, shape.max];
    return lo + this.rng.next() * (hi - lo);
  }

  private checkFaults(): void {
    const rate = this.faults.readBitFlipRate;
    assert(rate >= 0 && rate <= 1, () => `readBitFlipRate ${rate} outside [0, 1]`);
  }

  /** The node at `path`, or undefined if it (or a directory on the way) is missing. */
  private lookup(path: string): SimNode | undefined {
    let at: SimNode = this.root;
    for (const name of parsePath(path)) {
      if (at.kind !== 'dir') return undefined;
      const next = at.current.get(name);
      if (next === undefined) return undefined;
      at = next;
    }
    return at;
  }

  private dirAt(path: string, syscall: string): SimDir {
    const dir = this.walk(parsePath(path), path, syscall);
    if (dir.kind !== 'dir') throw new SimFsError('ENOTDIR', syscall, path);
    return dir;
  }

  private fileAt(path: string, syscall: string): SimFile {
    const file = this.walk(parsePath(path), path, syscall);
    if (file.kind !== 'file') throw new SimFsError('EISDIR', syscall, path);
    return file;
  }

  /** The directory that holds (or would hold) `path`, and the entry's name in it. */
  private parentOf(path: string, syscall: string): { parent: SimDir; name: string } {
    const names = parsePath(path);
    const name = names.pop();
    if (name === undefined) throw new SimFsError('EISDIR', syscall, path, 'the root');
    const parent = this.walk(names, path, syscall);
    if (parent.kind !== 'dir') throw new SimFsError('ENOTDIR', syscall, path);
    return { parent, name };
  }

  /** Follows `names` from the root; throws ENOENT / ENOTDIR like Node. */
  private walk(names: readonly string[], path: string, syscall: string): SimNode {
    let at: SimNode = this.root;
    for (const name of names) {
      if (at.kind !== 'dir') throw new SimFsError('ENOTDIR', syscall, path);
      const next: SimNode | undefined = at.current.get(name);
      if (next === undefined) throw new SimFsError('ENOENT', syscall, path);
      at = next;
    }
    return at;
  }
}

/** Splits a '/'-separated path into names, resolving '.' and '..' lexically from the root. */
function parsePath(path: string): string[] {
  const names: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') names.pop();
    else names.push(segment);
  }
  return names;
}
