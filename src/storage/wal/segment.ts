/**
 * Segment files: naming, the 16-byte file header, and the scan that reads a
 * segment's records at startup and tells a torn tail from corruption.
 *
 * File header:
 * ```
 * offset  size  field
 *      0     4  magic    the bytes "TWAL"
 *      4     4  version  u32 LE, 1
 *      8     4  seq      u32 LE, the sequence number in the file name
 *     12     4  crc32c   u32 LE, CRC-32C of bytes [0, 12)
 * ```
 * Records follow back to back from byte 16 (see record.ts). An empty file
 * (0 bytes) is a segment that was created but never written: the header is
 * written together with the first records, in the same append.
 */
import { assert } from '../../core/assert.ts';
import { crc32c } from '../../core/crc32c.ts';
import { TesseraError } from '../../core/errors.ts';
import { DecodeError } from './bytes.ts';
import type { LogRecord } from './record.ts';
import { checkFrame, decodeRecord, RECORD_PREFIX_BYTES } from './record.ts';

/** Bytes of a segment's file header. */
export const SEGMENT_HEADER_BYTES = 16;
/** Largest sequence number (the header stores it in 32 bits). */
export const SEGMENT_SEQ_MAX = 0xffff_ffff;

const MAGIC = [0x54, 0x57, 0x41, 0x4c]; // "TWAL"
const VERSION = 1;
const NAME_PATTERN = /^(\d{8,10})\.wal$/;

/** The file name of segment `seq`: zero-padded to 8 digits, e.g. `00000001.wal`. */
export function segmentFileName(seq: number): string {
  assert(
    Number.isInteger(seq) && seq >= 1 && seq <= SEGMENT_SEQ_MAX,
    () => `bad segment seq ${seq}`,
  );
  return `${String(seq).padStart(8, '0')}.wal`;
}

/** The sequence number of a segment file name, or null if `name` is not a segment. */
export function parseSegmentFileName(name: string): number | null {
  const m = NAME_PATTERN.exec(name);
  if (m === null) return null;
  const seq = Number(m[1]);
  return seq >= 1 && seq <= SEGMENT_SEQ_MAX && segmentFileName(seq) === name ? seq : null;
}

/** The header that starts segment `seq`. */
export function encodeSegmentHeader(seq: number): Uint8Array {
  const out = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, seq, true);
  view.setUint32(12, crc32c(out, 0, 12), true);
  return out;
}

/** Why the header of segment `seq` is invalid, or null if it is valid. */
export function checkSegmentHeader(bytes: Uint8Array, seq: number): string | null {
  if (bytes.length < SEGMENT_HEADER_BYTES)
    return `incomplete segment header (${bytes.length} bytes)`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  if (view.getUint32(12, true) !== crc32c(bytes, 0, 12)) return 'segment header checksum mismatch';
  if (MAGIC.some((b, i) => bytes[i] !== b)) return 'not a log segment (bad magic)';
  const version = view.getUint32(4, true);
  if (version !== VERSION) return `unsupported segment version ${version}`;
  const headerSeq = view.getUint32(8, true);
  if (headerSeq !== seq) return `segment header names seq ${headerSeq}, file name says ${seq}`;
  return null;
}

/** Location of a record in the log: segment, byte offset and length. Mutable while staged. */
export interface RecordLoc {
  /** Segment sequence number; 0 while the record is staged and not yet appended. */
  seq: number;
  /** Byte offset of the record in its segment (in the staging buffer while staged). */
  offset: number;
  /** Record bytes, prefix included. */
  readonly lengthBytes: number;
}

/** What a scan found in a segment. */
export interface SegmentScan {
  /** Bytes of the segment that hold its header and valid records. */
  readonly validBytes: number;
  /** Set when the last segment ends in a torn write: why its tail is invalid. */
  readonly tornReason: string | null;
}

/**
 * Checks the header and every record frame (length, checksum) of segment
 * `seq`, the bytes of file `path`, without decoding bodies.
 *
 * Torn tail: in the LAST segment, an invalid frame (incomplete, over-long or
 * failing its checksum) with no valid frame anywhere after it is a write a
 * crash cut short; the scan stops there and reports it so the caller can
 * truncate. An invalid frame in a non-last segment, or followed by a valid
 * frame, throws CORRUPTION naming `path` and the byte offset.
 */
export function scanSegment(
  bytes: Uint8Array,
  path: string,
  seq: number,
  isLast: boolean,
): SegmentScan {
  if (bytes.length === 0) return { validBytes: 0, tornReason: null };
  const headerProblem = checkSegmentHeader(bytes, seq);
  if (headerProblem !== null) return invalidTail(bytes, path, isLast, 0, headerProblem);
  let offset = SEGMENT_HEADER_BYTES;
  while (offset < bytes.length) {
    const frame = checkFrame(bytes, offset);
    if (!frame.ok) return invalidTail(bytes, path, isLast, offset, frame.reason);
    offset += frame.lengthBytes;
  }
  return { validBytes: offset, tornReason: null };
}

/**
 * Receives each record of a segment in order. Returns an error message if
 * the record cannot be replayed (the caller turns it into CORRUPTION).
 */
export type RecordVisitor = (record: LogRecord, loc: RecordLoc) => string | undefined;

/**
 * Decodes the records of `bytes[0, validBytes)`, whose frames
 * {@link scanSegment} accepted, and hands each to `visit` in order. A
 * malformed record (its checksum matched, so not a torn write) or one that
 * `visit` rejects throws CORRUPTION naming `path` and the byte offset.
 */
export function visitRecords(
  bytes: Uint8Array,
  path: string,
  seq: number,
  validBytes: number,
  visit: RecordVisitor,
): void {
  let offset = validBytes === 0 ? 0 : SEGMENT_HEADER_BYTES;
  while (offset < validBytes) {
    const lengthBytes =
      RECORD_PREFIX_BYTES +
      new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0, true);
    const record = decodeOrThrow(bytes, path, offset, lengthBytes);
    const problem = visit(record, { seq, offset, lengthBytes });
    if (problem !== undefined) throw corruption(path, offset, problem);
    offset += lengthBytes;
  }
}

/**
 * Decodes a record whose frame is valid; a malformed body is CORRUPTION
 * (its checksum matched, so this is not a torn write).
 */
export function decodeOrThrow(
  bytes: Uint8Array,
  path: string,
  offset: number,
  lengthBytes: number,
): LogRecord {
  try {
    return decodeRecord(bytes, offset, lengthBytes);
  } catch (e) {
    if (e instanceof DecodeError) throw corruption(path, offset, `malformed record: ${e.message}`);
    throw e;
  }
}

/** The CORRUPTION error for byte `offset` of `path`. */
export function corruption(path: string, offset: number, reason: string): TesseraError {
  return new TesseraError('CORRUPTION', `log segment ${path} at byte offset ${offset}: ${reason}`, {
    path,
    offset,
  });
}

function invalidTail(
  bytes: Uint8Array,
  path: string,
  isLast: boolean,
  offset: number,
  reason: string,
): SegmentScan {
  if (!isLast) throw corruption(path, offset, `${reason} (not the last segment)`);
  const valid = findValidFrame(bytes, offset + 1);
  if (valid !== null) {
    throw corruption(path, offset, `${reason}, followed by a valid record at ${valid}`);
  }
  return { validBytes: offset, tornReason: `${reason} at byte offset ${offset}` };
}

/**
 * The offset of the first valid record frame at or after `from`, trying
 * every byte position (a corrupted length prefix hides where the next record
 * starts). A torn write leaves nothing valid after the tear; finding
 * something means the damage is in the middle of the log.
 */
function findValidFrame(bytes: Uint8Array, from: number): number | null {
  for (let offset = from; offset < bytes.length; offset++) {
    if (checkFrame(bytes, offset).ok) return offset;
  }
  return null;
}
