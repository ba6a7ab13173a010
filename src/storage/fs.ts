/**
 * The file system as storage code sees it: a small synchronous interface
 * with explicit durability. `src/node/fs.ts` implements it on the real disk;
 * the simulator implements it on a simulated disk that loses what was not
 * made durable when its node crashes.
 *
 * Durability rules (what survives a crash):
 * - bytes appended to a file survive only after `fsync` of that file;
 * - creating, renaming or deleting a file survives only after `fsyncDir` of
 *   its directory;
 * - a crash may keep any prefix of the bytes appended since the last fsync
 *   (a torn write), never bytes out of order.
 *
 * Errors: every method throws on failure (the real implementation throws
 * Node's errors). Paths are '/'-separated.
 */

/** An open file, written only at its end. */
export interface AppendFile {
  readonly path: string;
  /** Appends bytes at the end of the file (not yet durable). */
  append(data: Uint8Array): void;
  /** Makes every byte appended so far durable. */
  fsync(): void;
  /** Current size in bytes, including what is not yet durable. */
  size(): number;
  close(): void;
}

export interface FileSystem {
  /** Creates the directory and its parents if missing. */
  mkdirp(dir: string): void;
  /** Names (not paths) of the entries in `dir`, sorted. */
  list(dir: string): string[];
  exists(path: string): boolean;
  /** The whole content of a file. */
  readFile(path: string): Uint8Array;
  /** Opens a file for appending, creating it (empty) if it does not exist. */
  openAppend(path: string): AppendFile;
  /** Cuts a file to `size` bytes (durable once the file is fsynced). */
  truncate(path: string, size: number): void;
  unlink(path: string): void;
  rename(from: string, to: string): void;
  /** Makes creations, renames and deletions in `dir` durable. */
  fsyncDir(dir: string): void;
}

/** Joins path segments with '/'. */
export function joinPath(...parts: string[]): string {
  return parts.join('/').replace(/\/+/g, '/');
}
