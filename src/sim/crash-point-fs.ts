/**
 * A file system wrapper for the simulator that can crash a node in the
 * middle of a sync: once armed, the next fsync throws {@link SimCrash} after
 * the bytes were appended but before they became durable, so the crash that
 * follows exercises torn writes of exactly the batch being synced.
 */
import type { AppendFile, FileSystem } from '../storage/fs.ts';

/** Thrown out of fsync when the armed crash point is reached. */
export class SimCrash extends Error {
  override readonly name = 'SimCrash';
}

export class CrashPointFs implements FileSystem {
  private armed = false;

  constructor(private readonly inner: FileSystem) {}

  /** Arms (or disarms) the crash point: the next fsync crashes instead of completing. */
  armCrashAtFsync(armed: boolean): void {
    this.armed = armed;
  }

  mkdirp(dir: string): void {
    this.inner.mkdirp(dir);
  }
  list(dir: string): string[] {
    return this.inner.list(dir);
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
  readFile(path: string): Uint8Array {
    return this.inner.readFile(path);
  }
  openAppend(path: string): AppendFile {
    const file = this.inner.openAppend(path);
    return {
      path: file.path,
      append: (data) => file.append(data),
      size: () => file.size(),
      close: () => file.close(),
      fsync: () => {
        if (this.armed) {
          this.armed = false;
          throw new SimCrash(`crash during fsync of ${path}`);
        }
        file.fsync();
      },
    };
  }
  truncate(path: string, size: number): void {
    this.inner.truncate(path, size);
  }
  unlink(path: string): void {
    this.inner.unlink(path);
  }
  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }
  fsyncDir(dir: string): void {
    this.inner.fsyncDir(dir);
  }
}
