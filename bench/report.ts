/**
 * Helpers shared by the benchmarks: quantiles, number formatting, and the
 * kind of file system a benchmark ran on (fsync figures mean nothing on tmpfs).
 */
import { statfsSync } from 'node:fs';

/** statfs magic numbers of the file systems a benchmark is likely to land on. */
const FS_TYPES: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext2/3/4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs (fsync is free: numbers are not disk numbers)'],
  [0x794c7630, 'overlayfs'],
  [0x2fc12fc1, 'zfs'],
]);

/** The q-quantile of ascending values (nearest rank); 0 when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** A number with thousands separators and `digits` decimals. */
export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A number rounded to `d` decimals, for JSON summaries. */
export const round = (n: number, d: number): number => Number(n.toFixed(d));

/** The file system type under `dir`. */
export function fsType(dir: string): string {
  const type = statfsSync(dir).type;
  return FS_TYPES.get(type) ?? `statfs type 0x${type.toString(16)}`;
}
