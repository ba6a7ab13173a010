// Coalescing: payloads packed greedily into frames under both per-frame
// bounds, decoded back in order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { coalesceFrames } from '../../src/transport/coalesce.ts';
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  encodeEnvelopePayload,
  type Envelope,
} from '../../src/transport/frame.ts';
import { SAMPLE_ENVELOPES } from './samples.ts';

function decodeAll(frames: readonly { frame: Uint8Array }[], frameBytesMax?: number): Envelope[] {
  const decoder = new FrameDecoder(frameBytesMax);
  return frames.flatMap((f) => decoder.push(f.frame));
}

describe('coalesceFrames', () => {
  it('packs every envelope of a turn into one frame when the bounds allow', () => {
    const payloads = SAMPLE_ENVELOPES.map(encodeEnvelopePayload);
    const frames = coalesceFrames(payloads, 1024, 1 << 20);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.envelopes, SAMPLE_ENVELOPES.length);
    assert.deepEqual(decodeAll(frames), SAMPLE_ENVELOPES);
  });

  it('splits at frameEnvelopesMax, including array16 batches', () => {
    const many = Array.from({ length: 40 }, (_, i) => SAMPLE_ENVELOPES[i % 10]!);
    const frames = coalesceFrames(many.map(encodeEnvelopePayload), 17, 1 << 20);
    assert.deepEqual(
      frames.map((f) => f.envelopes),
      [17, 17, 6],
    );
    assert.deepEqual(decodeAll(frames), many);
  });

  it('splits at frameBytesMax and never builds a larger frame', () => {
    const payloads = SAMPLE_ENVELOPES.map(encodeEnvelopePayload);
    const largest = Math.max(...payloads.map((p) => p.length));
    for (const frameBytesMax of [largest, largest + 1, largest + 500, 2 * largest, 4 * largest]) {
      const frames = coalesceFrames(payloads, 1024, frameBytesMax);
      for (const f of frames) assert.ok(f.frame.length - FRAME_HEADER_BYTES <= frameBytesMax);
      assert.equal(
        frames.reduce((n, f) => n + f.envelopes, 0),
        payloads.length,
      );
      assert.deepEqual(decodeAll(frames, frameBytesMax), SAMPLE_ENVELOPES);
    }
  });

  it('returns no frame for no envelope', () => {
    assert.deepEqual(coalesceFrames([], 8, 1024), []);
  });
});
