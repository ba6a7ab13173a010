/**
 * The peer wire format. A connection carries a sequence of frames:
 *
 * ```
 * [u32 payload length, big-endian][u32 CRC-32C of payload, big-endian][payload]
 * ```
 *
 * The payload is msgpack (msgpackr, records off) of one of:
 *
 * - `{ hello: { node, cluster, version } }`: the handshake, always the first
 *   frame of a connection and only there (see {@link Hello});
 * - `{ range, msg }`: one {@link Envelope};
 * - `[{ range, msg }, ...]`: a batch of envelopes, delivered in order (what
 *   a sender's coalescing produces, see coalesce.ts);
 * - `{ chunk: { id, index, count, totalBytes, data, head?, crc? } }`: one
 *   chunk of a large snapshot (see snapshot-chunk.ts);
 * - `{ keepalive: true }`: nothing to deliver; proves the sender is alive.
 *
 * The checksum is computed on encode and verified on decode (a paired check
 * across the boundary). Decoding never returns garbage: a length above the
 * configured limit, a checksum mismatch or a payload that is not exactly one
 * of the shapes above throws a `TesseraError` and the stream is unusable from
 * then on (the caller closes the connection).
 */
import { Packr } from 'msgpackr';
import { assert } from '../core/assert.ts';
import { crc32c } from '../core/crc32c.ts';
import { TesseraError } from '../core/errors.ts';
import {
  PROTOCOL_VERSION,
  malformed,
  parseEnvelope,
  parseHello,
  type Envelope,
  type Hello,
} from './message-schema.ts';
import { parseSnapshotChunk, type SnapshotChunk } from './snapshot-chunk.ts';

export type { Envelope, Hello } from './message-schema.ts';

/** Bytes of the frame header: payload length and payload checksum. */
export const FRAME_HEADER_BYTES = 8;

/**
 * Default upper bound on one frame's payload, in bytes (4 MiB); both the
 * encoder and the decoder enforce it. Large snapshots travel in chunks (see
 * snapshot-chunk.ts), so a frame holds at most one chunk, a coalesced batch,
 * or one message (a Raft append is bounded by the core's `msgBytesMax`).
 */
export const FRAME_BYTES_MAX_DEFAULT = 4 * 1024 * 1024;

/** The largest payload the u32 length field can describe. */
export const FRAME_BYTES_MAX_LIMIT = 0xffff_ffff;

/** Bytes of a msgpackr error message kept in our error (its own may embed the whole payload). */
const DECODE_ERROR_CHARS_MAX = 120;

// copyBuffers: decoded byte strings own their memory instead of pinning the frame's chunk.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

function checkFrameBytesMax(frameBytesMax: number): void {
  assert(
    Number.isSafeInteger(frameBytesMax) &&
      frameBytesMax > 0 &&
      frameBytesMax <= FRAME_BYTES_MAX_LIMIT,
    () => `frameBytesMax out of range: ${frameBytesMax}`,
  );
}

/** Wraps an encoded payload in a header. Throws REQUEST_TOO_LARGE above `frameBytesMax`. */
function frameOf(payload: Uint8Array, frameBytesMax: number): Uint8Array {
  checkFrameBytesMax(frameBytesMax);
  if (payload.length > frameBytesMax) {
    throw new TesseraError('REQUEST_TOO_LARGE', 'frame payload exceeds frameBytesMax', {
      limit: frameBytesMax,
      actual: payload.length,
    });
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payload.length);
  view.setUint32(4, crc32c(payload));
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Encodes one envelope, or a batch of envelopes delivered in order, as one
 * frame. Throws `TesseraError('REQUEST_TOO_LARGE')` if the payload exceeds
 * `frameBytesMax` (the receiver would refuse it).
 */
export function encodeFrame(
  envelope: Envelope | readonly Envelope[],
  frameBytesMax = FRAME_BYTES_MAX_DEFAULT,
): Uint8Array {
  return frameOf(packr.pack(envelope), frameBytesMax);
}

/**
 * The msgpack payload of one envelope, for {@link encodeBatchFrame}: a sender
 * encodes each message once, when it is queued, so that its size is known
 * for the queue bounds and for splitting batches.
 */
export function encodeEnvelopePayload(envelope: Envelope): Uint8Array {
  return packr.pack(envelope);
}

/** Bytes of the msgpack array header for `count` elements. */
export function arrayHeaderBytes(count: number): number {
  if (count <= 0xf) return 1;
  return count <= 0xffff ? 3 : 5;
}

/** The largest {@link arrayHeaderBytes}. */
export const ARRAY_HEADER_BYTES_MAX = 5;

/**
 * Bytes of the payload of a batch of `count` envelope payloads totalling
 * `bytes`. A batch of one is sent as a bare envelope (no array header).
 */
export function batchPayloadBytes(count: number, bytes: number): number {
  return count === 1 ? bytes : arrayHeaderBytes(count) + bytes;
}

/**
 * Encodes envelope payloads (from {@link encodeEnvelopePayload}) as one frame
 * delivering them in order: a msgpack array written around the already
 * encoded elements, or the bare envelope for a batch of one. Requires at
 * least one payload. Throws REQUEST_TOO_LARGE above `frameBytesMax`.
 */
export function encodeBatchFrame(
  payloads: readonly Uint8Array[],
  frameBytesMax = FRAME_BYTES_MAX_DEFAULT,
): Uint8Array {
  assert(payloads.length > 0, 'a batch frame needs at least one envelope');
  if (payloads.length === 1) return frameOf(payloads[0]!, frameBytesMax);
  checkFrameBytesMax(frameBytesMax);
  const length = batchPayloadBytes(
    payloads.length,
    payloads.reduce((n, p) => n + p.length, 0),
  );
  if (length > frameBytesMax) {
    throw new TesseraError('REQUEST_TOO_LARGE', 'frame payload exceeds frameBytesMax', {
      limit: frameBytesMax,
      actual: length,
    });
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + length);
  const view = new DataView(frame.buffer);
  let at = FRAME_HEADER_BYTES;
  const count = payloads.length;
  if (count <= 0xf) {
    frame[at++] = 0x90 | count;
  } else if (count <= 0xffff) {
    frame[at++] = 0xdc;
    view.setUint16(at, count);
    at += 2;
  } else {
    frame[at++] = 0xdd;
    view.setUint32(at, count);
    at += 4;
  }
  for (const p of payloads) {
    frame.set(p, at);
    at += p.length;
  }
  view.setUint32(0, length);
  view.setUint32(4, crc32c(frame, FRAME_HEADER_BYTES));
  return frame;
}

/** Encodes one snapshot chunk as a frame. Throws REQUEST_TOO_LARGE above `frameBytesMax`. */
export function encodeSnapshotChunkFrame(
  chunk: SnapshotChunk,
  frameBytesMax = FRAME_BYTES_MAX_DEFAULT,
): Uint8Array {
  const { id, index, count, totalBytes, data, head, crc } = chunk;
  // Absent, not null: the schema tells chunk 0 and the last chunk by these keys.
  const body = {
    id,
    index,
    count,
    totalBytes,
    data,
    ...(head === null ? {} : { head }),
    ...(crc === null ? {} : { crc }),
  };
  return frameOf(packr.pack({ chunk: body }), frameBytesMax);
}

/** The keepalive frame (see the module comment); the same bytes every time. */
export const KEEPALIVE_FRAME: Uint8Array = frameOf(
  packr.pack({ keepalive: true }),
  FRAME_BYTES_MAX_DEFAULT,
);

/** Encodes the handshake frame for `node` in `cluster` (see {@link Hello}). */
export function encodeHelloFrame(hello: Omit<Hello, 'version'>): Uint8Array {
  const payload = {
    hello: { node: hello.node, cluster: hello.cluster, version: PROTOCOL_VERSION },
  };
  return frameOf(packr.pack(payload), FRAME_BYTES_MAX_DEFAULT);
}

/** Decodes msgpack, turning any decoder failure into INVALID_ARGUMENT. */
function unpack(payload: Uint8Array): unknown {
  try {
    return packr.unpack(payload);
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).slice(0, DECODE_ERROR_CHARS_MAX);
    throw new TesseraError('INVALID_ARGUMENT', `malformed frame: undecodable payload: ${reason}`);
  }
}

/** Decodes and validates an envelope payload (single or batch); other frame kinds are refused. */
export function decodeEnvelopes(payload: Uint8Array): Envelope[] {
  const value = unpack(payload);
  if (Array.isArray(value)) return value.map((v: unknown, i) => parseEnvelope(v, `batch[${i}]`));
  return [parseEnvelope(value)];
}

/** A decoded frame after the handshake: what {@link decodePeerFrame} returns. */
export type PeerFrame =
  | { readonly kind: 'envelopes'; readonly envelopes: Envelope[] }
  | { readonly kind: 'snapshot-chunk'; readonly chunk: SnapshotChunk }
  | { readonly kind: 'keepalive' };

/** Whether `value` is an object holding `key` (its shape is checked by the parser it picks). */
function hasKey(value: unknown, key: string): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && key in value;
}

/**
 * Decodes and validates any payload that may follow the handshake: an
 * envelope, a batch, a snapshot chunk or a keepalive. Throws
 * INVALID_ARGUMENT for anything else (a second handshake included).
 */
export function decodePeerFrame(payload: Uint8Array): PeerFrame {
  const value = unpack(payload);
  if (Array.isArray(value)) {
    return {
      kind: 'envelopes',
      envelopes: value.map((v: unknown, i) => parseEnvelope(v, `batch[${i}]`)),
    };
  }
  if (hasKey(value, 'chunk')) {
    return { kind: 'snapshot-chunk', chunk: parseSnapshotChunk(value['chunk']) };
  }
  if (hasKey(value, 'keepalive')) {
    if (value['keepalive'] !== true) malformed('keepalive', 'is not true');
    return { kind: 'keepalive' };
  }
  return { kind: 'envelopes', envelopes: [parseEnvelope(value)] };
}

/** Decodes and validates a handshake payload. */
export function decodeHello(payload: Uint8Array): Hello {
  const hello = parseHello(unpack(payload));
  if (hello.version !== PROTOCOL_VERSION) malformed('hello.version', 'is not supported');
  return hello;
}

/**
 * Splits a byte stream into checked frame payloads. Fed arbitrary chunks
 * (as TCP delivers them), it returns each complete frame's payload once its
 * checksum matches. Memory stays bounded: it holds at most one incomplete
 * frame (at most `frameBytesMax + FRAME_HEADER_BYTES` bytes) plus the chunk
 * being pushed, and it rejects an oversized length as soon as the header is
 * in, before buffering the body.
 *
 * After it throws, the stream is out of sync: every later `push` throws the
 * same error.
 */
export class FrameReader {
  private readonly chunks: Uint8Array[] = [];
  private bufferedBytes = 0;
  private failure: TesseraError | null = null;

  /** @param frameBytesMax largest accepted payload, in bytes; at most {@link FRAME_BYTES_MAX_LIMIT}. */
  constructor(private readonly frameBytesMax = FRAME_BYTES_MAX_DEFAULT) {
    checkFrameBytesMax(frameBytesMax);
  }

  /**
   * Appends `chunk` and returns the payloads of the frames it completes, in
   * order. Throws `TesseraError` REQUEST_TOO_LARGE (declared length above
   * `frameBytesMax`) or CORRUPTION (checksum mismatch).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure !== null) throw this.failure;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.bufferedBytes += chunk.length;
    }
    try {
      return this.drain();
    } catch (e) {
      if (e instanceof TesseraError) this.failure = e;
      throw e;
    }
  }

  /** Bytes held for an incomplete frame. */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  private drain(): Uint8Array[] {
    const payloads: Uint8Array[] = [];
    while (this.bufferedBytes >= FRAME_HEADER_BYTES) {
      const bytes = this.peek(FRAME_HEADER_BYTES);
      const header = new DataView(bytes.buffer, bytes.byteOffset, FRAME_HEADER_BYTES);
      const length = header.getUint32(0);
      if (length > this.frameBytesMax) {
        throw new TesseraError('REQUEST_TOO_LARGE', 'frame length exceeds frameBytesMax', {
          limit: this.frameBytesMax,
          actual: length,
        });
      }
      if (this.bufferedBytes < FRAME_HEADER_BYTES + length) break;
      this.take(FRAME_HEADER_BYTES);
      const payload = this.take(length);
      if (crc32c(payload) !== header.getUint32(4)) {
        throw new TesseraError('CORRUPTION', 'frame checksum mismatch');
      }
      payloads.push(payload);
    }
    return payloads;
  }

  /** The first `n` buffered bytes, without consuming them. Requires n <= bufferedBytes. */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return this.gather(n, false);
  }

  /** Removes and returns the first `n` buffered bytes. Requires n <= bufferedBytes. */
  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0]!;
    this.bufferedBytes -= n;
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    return this.gather(n, true);
  }

  /** Copies the first `n` bytes out of several chunks, consuming them if asked. */
  private gather(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const chunk = this.chunks[i]!;
      const part = Math.min(chunk.length, n - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (consume && part === chunk.length) this.chunks.shift();
      else if (consume) this.chunks[i] = chunk.subarray(part);
      else i++;
    }
    return out;
  }
}

/**
 * Decodes a stream of envelope frames (no handshake): a {@link FrameReader}
 * whose payloads are decoded and validated. Throws `TesseraError` with code
 * REQUEST_TOO_LARGE (oversized length), CORRUPTION (checksum mismatch) or
 * INVALID_ARGUMENT (undecodable or wrongly shaped payload).
 */
export class FrameDecoder {
  private readonly reader: FrameReader;

  /** @param frameBytesMax largest accepted payload, in bytes. */
  constructor(frameBytesMax = FRAME_BYTES_MAX_DEFAULT) {
    this.reader = new FrameReader(frameBytesMax);
  }

  /** Appends a chunk; returns the envelopes of the frames it completes, in order. */
  push(chunk: Uint8Array): Envelope[] {
    return this.reader.push(chunk).flatMap(decodeEnvelopes);
  }
}
