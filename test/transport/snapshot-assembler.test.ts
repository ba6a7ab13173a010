// Reassembly of chunked snapshots: released only when complete, in order,
// consistent and with a matching checksum; every violation throws a coded
// error.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { crc32c } from '../../src/core/crc32c.ts';
import { TesseraError } from '../../src/core/errors.ts';
import { rangeId } from '../../src/core/ids.ts';
import type { MsgSnap } from '../../src/raft/types.ts';
import {
  FrameReader,
  decodePeerFrame,
  encodeSnapshotChunkFrame,
} from '../../src/transport/frame.ts';
import { SnapshotAssembler } from '../../src/transport/snapshot-assembler.ts';
import {
  snapshotChunkCount,
  snapshotChunkHead,
  type SnapshotChunk,
} from '../../src/transport/snapshot-chunk.ts';
import { SAMPLE_MESSAGES } from './samples.ts';

const SNAP = SAMPLE_MESSAGES[6] as MsgSnap;
const RANGE = rangeId(4);
const LIMITS = { snapshotBytesMax: 1 << 20, snapshotPartialsMax: 2 };

/** The chunks a sender makes of `data` (as the peer link does). */
function chunksOf(id: number, data: Uint8Array, chunkBytes: number): SnapshotChunk[] {
  const msg: MsgSnap = { ...SNAP, snapshot: { ...SNAP.snapshot, data } };
  const count = snapshotChunkCount(data.length, chunkBytes);
  return Array.from({ length: count }, (_, index) => ({
    id,
    index,
    count,
    totalBytes: data.length,
    data: data.subarray(index * chunkBytes, (index + 1) * chunkBytes),
    head: index === 0 ? snapshotChunkHead({ range: RANGE, msg }) : null,
    crc: index === count - 1 ? crc32c(data) : null,
  }));
}

/** Through the wire codec and back, as the receiver sees it. */
function wire(chunk: SnapshotChunk): SnapshotChunk {
  const [payload] = new FrameReader().push(encodeSnapshotChunkFrame(chunk));
  const frame = decodePeerFrame(payload!);
  assert.equal(frame.kind, 'snapshot-chunk');
  return frame.kind === 'snapshot-chunk' ? frame.chunk : assert.fail();
}

const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff);

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof TesseraError && e.code === code);
}

describe('SnapshotAssembler', () => {
  it('releases the whole message once, after the last chunk', () => {
    for (const chunkBytes of [1, 999, 1000, 4096, 10_000, 20_000]) {
      const assembler = new SnapshotAssembler({ ...LIMITS, snapshotPartialsMax: 1 });
      const chunks = chunksOf(1, data, chunkBytes).map(wire);
      const out = chunks.map((c) => assembler.push(c));
      assert.ok(out.slice(0, -1).every((e) => e === null));
      assert.deepEqual(out.at(-1), {
        range: RANGE,
        msg: { ...SNAP, snapshot: { ...SNAP.snapshot, data } },
      });
      assert.equal(assembler.openCount, 0);
    }
  });

  it('reassembles two interleaved snapshots and an empty one', () => {
    const assembler = new SnapshotAssembler(LIMITS);
    const a = chunksOf(1, data, 3000);
    const b = chunksOf(2, data.subarray(0, 5000), 3000);
    const empty = chunksOf(3, new Uint8Array(0), 3000);
    assert.equal(assembler.push(a[0]!), null);
    assert.equal(assembler.push(b[0]!), null);
    assert.equal(assembler.push(a[1]!), null);
    assert.equal(assembler.push(b[1]!)?.range, RANGE);
    assert.equal(assembler.push(a[2]!), null);
    assert.equal(assembler.push(empty[0]!)?.msg.type, 'snap');
    assert.equal(assembler.push(a[3]!)?.msg.type, 'snap');
  });

  it('refuses every violation with a coded error', () => {
    const chunks = chunksOf(5, data, 3000);
    const fresh = (): SnapshotAssembler => new SnapshotAssembler(LIMITS);
    const started = (): SnapshotAssembler => {
      const s = fresh();
      s.push(chunks[0]!);
      return s;
    };
    throwsCode(() => started().push(chunks[2]!), 'INVALID_ARGUMENT'); // out of order
    throwsCode(() => fresh().push(chunks[1]!), 'INVALID_ARGUMENT'); // no chunk 0
    throwsCode(() => started().push({ ...chunks[1]!, count: 5 }), 'INVALID_ARGUMENT');
    throwsCode(() => started().push({ ...chunks[1]!, totalBytes: 9_000 }), 'INVALID_ARGUMENT');
    throwsCode(() => started().push(chunks[0]!), 'INVALID_ARGUMENT'); // id reused
    throwsCode(
      () => started().push({ ...chunks[1]!, data: new Uint8Array(7001) }),
      'INVALID_ARGUMENT',
    );
    throwsCode(
      () => fresh().push({ ...chunks[0]!, totalBytes: LIMITS.snapshotBytesMax + 1 }),
      'REQUEST_TOO_LARGE',
    );
    throwsCode(() => fresh().push({ ...chunks[0]!, count: 10_001 }), 'INVALID_ARGUMENT');
    const short = started();
    short.push(chunks[1]!);
    short.push(chunks[2]!);
    throwsCode(() => short.push({ ...chunks[3]!, data: new Uint8Array(10) }), 'INVALID_ARGUMENT');
    const corrupt = started();
    corrupt.push(chunks[1]!);
    corrupt.push(chunks[2]!);
    throwsCode(() => corrupt.push({ ...chunks[3]!, crc: chunks[3]!.crc! ^ 1 }), 'CORRUPTION');
    const full = fresh();
    full.push(chunksOf(1, data, 3000)[0]!);
    full.push(chunksOf(2, data, 3000)[0]!);
    throwsCode(() => full.push(chunksOf(3, data, 3000)[0]!), 'RESOURCE_EXHAUSTED');
    full.clear();
    assert.equal(full.openCount, 0);
  });

  it('refuses chunk frames of the wrong shape at the schema check', () => {
    const [c0, c1] = chunksOf(1, data, 3000);
    const bad: SnapshotChunk[] = [
      { ...c0!, head: null }, // chunk 0 without head
      { ...c1!, head: c0!.head }, // head on a later chunk
      { ...c1!, crc: 5 }, // crc before the last chunk
      { ...c0!, index: 4 }, // index not below count
      { ...c0!, count: 0, index: 0 },
      { ...c0!, head: { range: RANGE, msg: SAMPLE_MESSAGES[4]! } }, // not a snapshot
      { ...c0!, head: { range: RANGE, msg: SNAP } }, // data in the head
    ];
    for (const chunk of bad) throwsCode(() => wire(chunk), 'INVALID_ARGUMENT');
  });
});
