/**
 * Coalescing: the messages queued for one peer during one turn of the event
 * loop, whatever their range, leave as few frames as the per-frame bounds
 * allow. With many ranges per node this turns the heartbeats of every range
 * shared by two nodes into one frame per tick instead of one per range.
 */
import { assert } from '../core/assert.ts';
import {
  ARRAY_HEADER_BYTES_MAX,
  FRAME_HEADER_BYTES,
  batchPayloadBytes,
  encodeBatchFrame,
} from './frame.ts';

/** Default bound on envelopes per frame. */
export const FRAME_ENVELOPES_MAX_DEFAULT = 1024;

/** Largest accepted `frameEnvelopesMax`: a msgpack array16 header can count it. */
export const FRAME_ENVELOPES_MAX_LIMIT = 0xffff;

/**
 * Bytes a frame adds around one envelope's payload, at most (frame header
 * plus array header). Queue accounting reserves this much per envelope, so a
 * batch built from queued envelopes never holds more bytes than they reserved.
 */
export const ENVELOPE_OVERHEAD_BYTES_MAX = FRAME_HEADER_BYTES + ARRAY_HEADER_BYTES_MAX;

/** One frame built by {@link coalesceFrames} and how many envelopes it carries. */
export interface CoalescedFrame {
  readonly frame: Uint8Array;
  readonly envelopes: number;
}

/**
 * Packs envelope payloads (each from `encodeEnvelopePayload`, each at most
 * `frameBytesMax` bytes) into frames, in order, greedily: a frame takes the
 * next payload unless that would exceed `frameEnvelopesMax` envelopes or
 * `frameBytesMax` payload bytes. Delivering the frames in order delivers the
 * envelopes in order.
 */
export function coalesceFrames(
  payloads: readonly Uint8Array[],
  frameEnvelopesMax: number,
  frameBytesMax: number,
): CoalescedFrame[] {
  assert(
    Number.isSafeInteger(frameEnvelopesMax) &&
      frameEnvelopesMax >= 1 &&
      frameEnvelopesMax <= FRAME_ENVELOPES_MAX_LIMIT,
    () => `frameEnvelopesMax out of range: ${frameEnvelopesMax}`,
  );
  const frames: CoalescedFrame[] = [];
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  const cut = (): void => {
    frames.push({ frame: encodeBatchFrame(batch, frameBytesMax), envelopes: batch.length });
    batch = [];
    batchBytes = 0;
  };
  for (const payload of payloads) {
    assert(payload.length <= frameBytesMax, 'an envelope larger than a frame was queued');
    const fits =
      batch.length < frameEnvelopesMax &&
      batchPayloadBytes(batch.length + 1, batchBytes + payload.length) <= frameBytesMax;
    if (!fits) cut();
    batch.push(payload);
    batchBytes += payload.length;
  }
  if (batch.length > 0) cut();
  return frames;
}
