// The frame codec: round trips of every message, reassembly across arbitrary
// chunk splits, and rejection (never garbage) of oversized, corrupt and
// malformed frames.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';

import { crc32c } from '../../src/core/crc32c.ts';
import { TesseraError } from '../../src/core/errors.ts';
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameReader,
  KEEPALIVE_FRAME,
  decodeHello,
  decodePeerFrame,
  encodeBatchFrame,
  encodeEnvelopePayload,
  encodeFrame,
  encodeHelloFrame,
} from '../../src/transport/frame.ts';
import { nodeId } from '../../src/core/ids.ts';
import { PROTOCOL_VERSION } from '../../src/transport/message-schema.ts';
import { SAMPLE_ENVELOPES, SAMPLE_MESSAGES } from './samples.ts';
import { concat } from '../support/bytes.ts';

const packr = new Packr({ useRecords: false });

/** A frame with a correct header around arbitrary payload bytes. */
function rawFrame(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payload.length);
  view.setUint32(4, crc32c(payload));
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof TesseraError && e.code === code);
}

describe('frame codec', () => {
  it('has a sample of every message type', () => {
    const types = new Set(SAMPLE_MESSAGES.map((m) => m.type));
    assert.equal(types.size, 10);
  });

  it('round-trips every message type, one frame each', () => {
    for (const envelope of SAMPLE_ENVELOPES) {
      const decoded = new FrameDecoder().push(encodeFrame(envelope));
      assert.deepEqual(decoded, [envelope]);
      for (const { msg } of decoded) {
        if (msg.type === 'app')
          for (const e of msg.entries) assert.ok(e.data instanceof Uint8Array);
        if (msg.type === 'snap') assert.ok(msg.snapshot.data instanceof Uint8Array);
      }
    }
  });

  it('round-trips a batch in order', () => {
    const decoded = new FrameDecoder().push(encodeFrame(SAMPLE_ENVELOPES));
    assert.deepEqual(decoded, SAMPLE_ENVELOPES);
  });

  it('reassembles frames across arbitrary chunk splits', () => {
    const stream = concat(SAMPLE_ENVELOPES.map((e) => encodeFrame(e)));
    const splits = fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), {
      maxLength: 40,
    });
    fc.assert(
      fc.property(splits, (points) => {
        const cuts = [0, ...[...points].sort((a, b) => a - b), stream.length];
        const decoder = new FrameDecoder();
        const out = cuts.slice(1).flatMap((end, i) => decoder.push(stream.subarray(cuts[i]!, end)));
        assert.deepEqual(out, SAMPLE_ENVELOPES);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes chunks that are views into a larger buffer (as sockets deliver them)', () => {
    const frame = encodeFrame(SAMPLE_ENVELOPES[0]!);
    const backing = new Uint8Array(frame.length + 13);
    backing.set(frame, 7);
    const view = Buffer.from(backing.buffer, 7, frame.length); // Buffer#slice is a view, too
    assert.deepEqual(new FrameDecoder().push(view), [SAMPLE_ENVELOPES[0]]);
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(view.subarray(0, 3)), []);
    assert.deepEqual(decoder.push(view.subarray(3)), [SAMPLE_ENVELOPES[0]]);
  });

  it('decodes byte-at-a-time and holds only the incomplete frame', () => {
    const frame = encodeFrame(SAMPLE_ENVELOPES[0]!);
    const reader = new FrameReader();
    for (let i = 0; i < frame.length - 1; i++)
      assert.deepEqual(reader.push(frame.subarray(i, i + 1)), []);
    assert.equal(reader.pendingBytes, frame.length - 1);
    assert.equal(reader.push(frame.subarray(frame.length - 1)).length, 1);
    assert.equal(reader.pendingBytes, 0);
  });

  it('rejects an oversized length as soon as the header arrives', () => {
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    new DataView(header.buffer).setUint32(0, 0xffff_ffff);
    throwsCode(() => new FrameDecoder().push(header), 'REQUEST_TOO_LARGE');
    const frame = encodeFrame(SAMPLE_ENVELOPES[6]!); // the snapshot, > 3000 bytes
    throwsCode(
      () => new FrameDecoder(1024).push(frame.subarray(0, FRAME_HEADER_BYTES)),
      'REQUEST_TOO_LARGE',
    );
    throwsCode(() => encodeFrame(SAMPLE_ENVELOPES[6]!, 1024), 'REQUEST_TOO_LARGE');
  });

  it('rejects any single flipped byte (header checksum or payload) with CORRUPTION', () => {
    const frame = encodeFrame(SAMPLE_ENVELOPES[0]!);
    for (let i = 4; i < frame.length; i++) {
      const bad = frame.slice();
      bad[i] = bad[i]! ^ 0x01;
      throwsCode(() => new FrameDecoder().push(bad), 'CORRUPTION');
    }
  });

  it('stays failed after an error', () => {
    const bad = encodeFrame(SAMPLE_ENVELOPES[0]!);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    const reader = new FrameReader();
    throwsCode(() => reader.push(bad), 'CORRUPTION');
    throwsCode(() => reader.push(encodeFrame(SAMPLE_ENVELOPES[1]!)), 'CORRUPTION');
  });

  it('rejects a valid checksum over undecodable msgpack with INVALID_ARGUMENT', () => {
    for (const garbage of [[0xc1], [0xff, 0xff, 0xff], [0x92, 0x01], [0xd4, 0xff, 0x00], []]) {
      throwsCode(
        () => new FrameDecoder().push(rawFrame(Uint8Array.from(garbage))),
        'INVALID_ARGUMENT',
      );
    }
  });

  it('rejects wrongly shaped payloads with INVALID_ARGUMENT', () => {
    const good = SAMPLE_ENVELOPES[0]!;
    const app = SAMPLE_MESSAGES[0]!;
    const shapes: unknown[] = [
      null,
      42,
      'hello',
      new Date(0),
      { range: 1 },
      { range: -1, msg: good.msg },
      { range: 1.5, msg: good.msg },
      { range: '1', msg: good.msg },
      { range: 1, msg: { ...app, type: 'bogus' } },
      { range: 1, msg: { ...app, type: undefined } },
      { range: 1, msg: { ...app, from: 'x' } },
      { range: 1, msg: { ...app, term: 2 ** 60 } },
      { range: 1, msg: { ...app, entries: 'nope' } },
      { range: 1, msg: { ...app, entries: [{ term: 1, index: 1, type: 'normal', data: 'str' }] } },
      {
        range: 1,
        msg: { ...app, entries: [{ term: 1, index: 1, type: 'weird', data: new Uint8Array() }] },
      },
      { range: 1, msg: { ...SAMPLE_MESSAGES[2]!, pre: 1 } },
      { range: 1, msg: { ...SAMPLE_MESSAGES[4]!, context: 5 } },
      { range: 1, msg: { ...SAMPLE_MESSAGES[4]!, quiesce: 'yes' } },
      {
        range: 1,
        msg: {
          ...SAMPLE_MESSAGES[6]!,
          snapshot: { meta: { index: 1, term: 1 }, data: new Uint8Array() },
        },
      },
      {
        range: 1,
        msg: {
          ...SAMPLE_MESSAGES[6]!,
          snapshot: { meta: { index: 1, term: 1, conf: { voters: [1] } }, data: new Uint8Array() },
        },
      },
      [good, { range: 2, msg: null }],
      { hello: { node: 1, cluster: 'c', version: 1 } },
    ];
    for (const shape of shapes) {
      throwsCode(() => new FrameDecoder().push(rawFrame(packr.pack(shape))), 'INVALID_ARGUMENT');
    }
  });

  it('round-trips the handshake and rejects other payloads as one', () => {
    const hello = encodeHelloFrame({ node: nodeId(3), cluster: 'alpha' });
    const [payload] = new FrameReader().push(hello);
    assert.deepEqual(decodeHello(payload!), {
      node: 3,
      cluster: 'alpha',
      version: PROTOCOL_VERSION,
    });
    const [envPayload] = new FrameReader().push(encodeFrame(SAMPLE_ENVELOPES[0]!));
    throwsCode(() => decodeHello(envPayload!), 'INVALID_ARGUMENT');
    const future = packr.pack({ hello: { node: 3, cluster: 'alpha', version: 99 } });
    throwsCode(() => decodeHello(future), 'INVALID_ARGUMENT');
  });

  it('decodes every frame kind that may follow the handshake, and nothing else', () => {
    const payloadOf = (frame: Uint8Array): Uint8Array => new FrameReader().push(frame)[0]!;
    assert.deepEqual(decodePeerFrame(payloadOf(KEEPALIVE_FRAME)), { kind: 'keepalive' });
    const batch = encodeBatchFrame(SAMPLE_ENVELOPES.map(encodeEnvelopePayload));
    assert.deepEqual(batch, encodeFrame(SAMPLE_ENVELOPES));
    assert.deepEqual(decodePeerFrame(payloadOf(batch)), {
      kind: 'envelopes',
      envelopes: SAMPLE_ENVELOPES,
    });
    assert.deepEqual(decodePeerFrame(payloadOf(encodeFrame(SAMPLE_ENVELOPES[1]!))), {
      kind: 'envelopes',
      envelopes: [SAMPLE_ENVELOPES[1]],
    });
    for (const shape of [
      { keepalive: false },
      { keepalive: true, chunk: 1 },
      { chunk: { id: 1 } },
      { hello: { node: 1, cluster: 'c', version: PROTOCOL_VERSION } },
    ]) {
      throwsCode(() => decodePeerFrame(packr.pack(shape)), 'INVALID_ARGUMENT');
    }
  });
});
