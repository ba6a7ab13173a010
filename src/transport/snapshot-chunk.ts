/**
 * Snapshot chunks: how a Raft snapshot (a `snap` message) larger than one
 * chunk crosses the wire. The sender cuts `snapshot.data` into chunks of at
 * most `snapshotChunkBytes` bytes and sends each in its own frame
 * `{ chunk: SnapshotChunk }`, so that no frame has to hold a whole snapshot
 * and other frames (heartbeats) can travel between two chunks.
 *
 * Per chunk: the snapshot `id` (unique per sender connection, increasing),
 * the chunk `index` (0, 1, 2, ...), the `count` of chunks and the
 * `totalBytes` of the data (the same on every chunk), and the chunk's bytes.
 * The first chunk also carries `head`: the envelope with the message
 * metadata (range, from, to, term, snapshot meta) and empty `snapshot.data`.
 * The last chunk also carries `crc`: the CRC-32C of the whole data. It rides
 * on the last chunk rather than on every chunk so that the sender computes
 * it chunk by chunk as it streams, instead of reading a large snapshot once
 * more, with the event loop blocked, before the first byte can leave.
 */
import { TesseraError } from '../core/errors.ts';
import type { MsgSnap } from '../raft/types.ts';
import { bytes, fields, malformed, parseEnvelope, uint, type Envelope } from './message-schema.ts';

/** Default bytes of snapshot data per chunk (1 MiB): a heartbeat waits behind one chunk at most. */
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1024 * 1024;

/** Default bound on one snapshot's data a receiver accepts, in bytes (1 GiB). */
export const SNAPSHOT_BYTES_MAX_DEFAULT = 1024 * 1024 * 1024;

/** Default bound on snapshots being reassembled at once per inbound connection. */
export const SNAPSHOT_PARTIALS_MAX_DEFAULT = 2;

/** Largest value of a CRC-32C. */
const CRC_MAX = 0xffff_ffff;

/** One frame's worth of a chunked snapshot; see the module comment. */
export interface SnapshotChunk {
  /** Identifies the snapshot on its connection; a sender never reuses one there. */
  readonly id: number;
  /** Position of this chunk, from 0 to `count - 1`. */
  readonly index: number;
  /** Number of chunks of the snapshot, at least 1. */
  readonly count: number;
  /** Bytes of the whole `snapshot.data`. */
  readonly totalBytes: number;
  /** This chunk's part of the data. */
  readonly data: Uint8Array;
  /** On chunk 0 only: the message, its `snapshot.data` empty. */
  readonly head: Envelope | null;
  /** On the last chunk only: the CRC-32C of the whole data. */
  readonly crc: number | null;
}

/** Number of chunks of `chunkBytes` needed for `totalBytes` of data (at least 1). */
export function snapshotChunkCount(totalBytes: number, chunkBytes: number): number {
  return Math.max(1, Math.ceil(totalBytes / chunkBytes));
}

/** The head of chunk 0: the snapshot message without its data. */
export function snapshotChunkHead(envelope: { range: Envelope['range']; msg: MsgSnap }): Envelope {
  const { msg } = envelope;
  return {
    range: envelope.range,
    msg: { ...msg, snapshot: { meta: msg.snapshot.meta, data: new Uint8Array(0) } },
  };
}

/**
 * Parses the value of a chunk frame's `chunk` field. Checks shapes and the
 * relations within one chunk (index below count, head exactly on chunk 0,
 * crc exactly on the last, a `snap` message with empty data in the head);
 * relations across chunks are the reassembler's. Throws INVALID_ARGUMENT.
 */
export function parseSnapshotChunk(value: unknown, path = 'chunk'): SnapshotChunk {
  const o = fields(value, path);
  const id = uint(o, 'id', path);
  const index = uint(o, 'index', path);
  const count = uint(o, 'count', path);
  const totalBytes = uint(o, 'totalBytes', path);
  const data = bytes(o, 'data', path);
  if (count < 1 || index >= count) malformed(`${path}.index`, 'is not below a positive count');
  const first = index === 0;
  const last = index === count - 1;
  if (first !== (o['head'] !== undefined)) malformed(`${path}.head`, 'is not on exactly chunk 0');
  if (last !== (o['crc'] !== undefined)) malformed(`${path}.crc`, 'is not on exactly the last');
  const head = first ? parseEnvelope(o['head'], `${path}.head`) : null;
  if (head !== null && (head.msg.type !== 'snap' || head.msg.snapshot.data.length !== 0)) {
    malformed(`${path}.head.msg`, 'is not a snapshot message without data');
  }
  const crc = last ? uint(o, 'crc', path) : null;
  if (crc !== null && crc > CRC_MAX) malformed(`${path}.crc`, 'is not a CRC-32C');
  return { id, index, count, totalBytes, data, head, crc };
}

/** Throws the REQUEST_TOO_LARGE error for a snapshot above `snapshotBytesMax`. */
export function snapshotTooLarge(snapshotBytesMax: number, actual: number): never {
  throw new TesseraError('REQUEST_TOO_LARGE', 'snapshot exceeds snapshotBytesMax', {
    limit: snapshotBytesMax,
    actual,
  });
}
