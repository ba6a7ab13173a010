/**
 * {@link FileSystem} on the real disk, with Node's synchronous `node:fs`
 * calls. The only implementation that touches the disk; the simulator's
 * `SimDisk` implements the same interface and durability rules.
 *
 * Durability, as `src/storage/fs.ts` states it:
 * - `AppendFile.fsync` calls fdatasync(2): for an append-only file it flushes
 *   the data and the file size (the metadata needed to read the data back),
 *   which is all the durability rules promise, without the extra journal
 *   write fsync(2) would spend on timestamps.
 * - `fsyncDir` opens the directory read-only and fsyncs it, making
 *   creations, renames and deletions in it durable.
 * - `mkdirp` fsyncs the parent of every directory it creates, so a created
 *   directory is durable at once (SimDisk models `mkdirp` the same way).
 *
 * Errors are Node's (`code`, `syscall`, `path`), thrown as they come.
 * Not for use on macOS where durability matters: there fsync does not flush
 * the drive's cache (F_FULLFSYNC would).
 */
import * as nodeFs from 'node:fs';
import * as nodePath from 'node:path';
import type { AppendFile, FileSystem } from '../storage/fs.ts';

/** The real disk. Stateless: one instance may be shared. */
export class NodeFileSystem implements FileSystem {
  /** Creates `dir` and any missing parents, fsyncing the parent of each directory created. */
  mkdirp(dir: string): void {
    const missing: string[] = [];
    let at = nodePath.resolve(dir);
    while (!nodeFs.existsSync(at)) {
      missing.push(at);
      const parent = nodePath.dirname(at);
      if (parent === at) break;
      at = parent;
    }
    for (const created of missing.reverse()) {
      nodeFs.mkdirSync(created);
      this.fsyncDir(nodePath.dirname(created));
    }
    if (!nodeFs.statSync(dir).isDirectory()) nodeFs.mkdirSync(dir); // throws EEXIST, like SimDisk
  }

  /** Entry names of `dir`, sorted. */
  list(dir: string): string[] {
    return nodeFs.readdirSync(dir).sort();
  }

  exists(path: string): boolean {
    return nodeFs.existsSync(path);
  }

  /** The whole file, as a plain Uint8Array view (not a Buffer). */
  readFile(path: string): Uint8Array {
    const buf = nodeFs.readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  openAppend(path: string): AppendFile {
    return NodeAppendFile.open(path);
  }

  truncate(path: string, size: number): void {
    nodeFs.truncateSync(path, size);
  }

  unlink(path: string): void {
    nodeFs.unlinkSync(path);
  }

  rename(from: string, to: string): void {
    nodeFs.renameSync(from, to);
  }

  fsyncDir(dir: string): void {
    const fd = nodeFs.openSync(dir, 'r');
    try {
      nodeFs.fsyncSync(fd);
    } finally {
      nodeFs.closeSync(fd);
    }
  }
}

/** A file opened with O_APPEND: every write lands at the end, whatever the position. */
class NodeAppendFile implements AppendFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    /** Current size, kept here to spare an fstat per call. */
    private bytes: number,
  ) {
    this.fd = fd;
  }

  static open(path: string): NodeAppendFile {
    const fd = nodeFs.openSync(path, 'a');
    try {
      return new NodeAppendFile(path, fd, nodeFs.fstatSync(fd).size);
    } catch (e) {
      nodeFs.closeSync(fd);
      throw e;
    }
  }

  /** Writes all of `data`, looping over partial writes. */
  append(data: Uint8Array): void {
    const fd = this.handle();
    let done = 0;
    while (done < data.length) {
      const n = nodeFs.writeSync(fd, data, done, data.length - done);
      done += n;
      this.bytes += n;
    }
  }

  fsync(): void {
    nodeFs.fdatasyncSync(this.handle());
  }

  size(): number {
    this.handle();
    return this.bytes;
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    nodeFs.closeSync(fd);
  }

  private handle(): number {
    if (this.fd === null) {
      throw Object.assign(new Error(`EBADF: bad file descriptor, ${this.path} is closed`), {
        code: 'EBADF',
        path: this.path,
      });
    }
    return this.fd;
  }
}
