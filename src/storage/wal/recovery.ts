/**
 * Startup of the log engine: find the segments, replay every record into a
 * fresh index, truncate a torn tail, refuse to start on anything else that
 * is damaged.
 *
 * Replay rules (later records override earlier ones):
 * - an entry record at index i drops the group's live entries >= i and
 *   becomes the last one;
 * - a hard state record replaces the group's hard state;
 * - a snapshot marker drops the group's entries <= its index, and all of
 *   them unless the record says the following entries are kept;
 * - a compaction marker drops the group's entries <= its index.
 */
import { assertNever } from '../../core/assert.ts';
import { TesseraError } from '../../core/errors.ts';
import type { RangeId } from '../../core/ids.ts';
import type { FileSystem } from '../fs.ts';
import { joinPath } from '../fs.ts';
import { GroupIndex } from './group-index.ts';
import type { LogRecord } from './record.ts';
import type { RecordLoc, SegmentScan } from './segment.ts';
import {
  corruption,
  parseSegmentFileName,
  scanSegment,
  segmentFileName,
  visitRecords,
} from './segment.ts';

/** What recovery hands to the engine. */
export interface RecoveredLog {
  /** Sequence numbers of the segments on disk, ascending and consecutive. */
  readonly segments: number[];
  readonly groups: Map<RangeId, GroupIndex>;
  /** Set if the last segment's tail was torn and truncated away: where and why. */
  readonly truncated: { readonly path: string; readonly reason: string } | null;
}

/**
 * Replays every segment of `dir` in order. Truncates (and fsyncs) a torn
 * tail of the last segment; throws CORRUPTION for any other damage, and for
 * a missing segment in the middle of the sequence (segments are only ever
 * deleted oldest first, one durable deletion at a time).
 */
export function recover(fs: FileSystem, dir: string): RecoveredLog {
  fs.mkdirp(dir);
  const segments = listSegments(fs, dir);
  const groups = new Map<RangeId, GroupIndex>();
  let truncated: RecoveredLog['truncated'] = null;
  segments.forEach((seq, i) => {
    const path = joinPath(dir, segmentFileName(seq));
    const { bytes, scan } = readAndScan(fs, path, seq, i === segments.length - 1);
    visitRecords(bytes, path, seq, scan.validBytes, (record, loc) =>
      replayRecord(groups, record, loc),
    );
    if (scan.tornReason !== null) {
      truncateTail(fs, path, scan.validBytes);
      truncated = { path, reason: scan.tornReason };
    }
  });
  return { segments, groups, truncated };
}

/**
 * How many times a segment is read before its damage is believed. A read
 * fault may be transient (a bit flipped on the way, not on the platter):
 * damage is accepted only when it persists, and a torn tail is truncated
 * only when two consecutive reads return identical bytes, so a transient
 * fault in the last record never truncates durable data.
 */
export const SEGMENT_READ_ATTEMPTS = 3;

function readAndScan(
  fs: FileSystem,
  path: string,
  seq: number,
  isLast: boolean,
): { bytes: Uint8Array; scan: SegmentScan } {
  let previousTorn: Uint8Array | null = null;
  let failure: unknown = null;
  for (let attempt = 0; attempt < SEGMENT_READ_ATTEMPTS; attempt++) {
    const bytes = fs.readFile(path);
    let scan: SegmentScan;
    try {
      scan = scanSegment(bytes, path, seq, isLast);
    } catch (e) {
      if (!(e instanceof TesseraError && e.code === 'CORRUPTION')) throw e;
      failure = e;
      previousTorn = null;
      continue;
    }
    if (scan.tornReason === null) return { bytes, scan };
    // A torn tail is believed only when two reads return the very same bytes:
    // two transient faults would differ (they flip different bits).
    if (previousTorn !== null && sameBytes(previousTorn, bytes)) return { bytes, scan };
    previousTorn = bytes;
  }
  throw failure ?? corruption(path, 0, 'reads of the segment tail disagree');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Applies one record to the index; returns why it cannot be applied, if so. */
export function replayRecord(
  groups: Map<RangeId, GroupIndex>,
  record: LogRecord,
  loc: RecordLoc,
): string | undefined {
  let g = groups.get(record.group);
  if (g === undefined) {
    g = new GroupIndex();
    groups.set(record.group, g);
  }
  switch (record.type) {
    case 'entry': {
      const { index, term } = record.entry;
      const problem = g.putEntry({ index, term, loc, staged: null });
      return problem === undefined ? undefined : `group ${record.group}: ${problem}`;
    }
    case 'hard-state':
      g.setHardState(record.hardState, loc);
      return undefined;
    case 'snapshot':
      g.setSnapshot(record.snapshot, record.keepFollowing, loc);
      return undefined;
    case 'compaction':
      g.compact(record.index, loc);
      return undefined;
    default:
      return assertNever(record, 'log record');
  }
}

function listSegments(fs: FileSystem, dir: string): number[] {
  const seqs: number[] = [];
  for (const name of fs.list(dir)) {
    const seq = parseSegmentFileName(name);
    if (seq !== null) seqs.push(seq);
  }
  seqs.sort((a, b) => a - b);
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1]! + 1) {
      const path = joinPath(dir, segmentFileName(seqs[i]!));
      throw corruption(path, 0, `segment ${seqs[i - 1]! + 1} is missing before it`);
    }
  }
  return seqs;
}

function truncateTail(fs: FileSystem, path: string, size: number): void {
  fs.truncate(path, size);
  const file = fs.openAppend(path);
  try {
    file.fsync();
  } finally {
    file.close();
  }
}
