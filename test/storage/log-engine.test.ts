// The log engine on the real disk: what recovery does with damaged files
// (torn tails are truncated, anything else refuses to start with a
// CORRUPTION error naming file and offset), segment rolling, group commit,
// segment deletion after compaction, limits, and the transient read faults
// and canary the simulator relies on. The LogStorage semantics themselves
// are covered by the shared suite (log-storage.test.ts).
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { AssertionError } from '../../src/core/assert.ts';
import { crc32c } from '../../src/core/crc32c.ts';
import { TesseraError } from '../../src/core/errors.ts';
import { logIndex, rangeId, term } from '../../src/core/ids.ts';
import { NodeFileSystem } from '../../src/node/fs.ts';
import { SeededRng } from '../../src/core/rng.ts';
import { SimDisk } from '../../src/sim/disk.ts';
import type { AppendFile, FileSystem } from '../../src/storage/fs.ts';
import type { LogEngineOptions } from '../../src/storage/wal/log-engine.ts';
import { LogEngine } from '../../src/storage/wal/log-engine.ts';
import { RECORD_BYTES_MAX, RECORD_HEADER_BYTES } from '../../src/storage/wal/record.ts';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from '../../src/storage/wal/segment.ts';
import { ent, ents, hs, snap } from './log-storage-suite.ts';

const A = rangeId(1);
const B = rangeId(2);
const SEG1 = '00000001.wal';
const SEG2 = '00000002.wal';

let dir = '';
const realFs = new NodeFileSystem();

beforeEach(() => {
  dir = nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), 'tessera-log-engine-'));
});
afterEach(() => {
  nodeFs.rmSync(dir, { recursive: true, force: true });
});

const open = (options: LogEngineOptions = {}, fs: FileSystem = realFs): LogEngine =>
  LogEngine.open(fs, dir, options);
const path = (name: string): string => nodePath.join(dir, name);
const segmentFiles = (): string[] =>
  nodeFs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort();
const sizeOf = (name: string): number => nodeFs.statSync(path(name)).size;

/** Byte offsets of the records in a segment file, read from their length prefixes. */
function recordOffsets(name: string): number[] {
  const bytes = nodeFs.readFileSync(path(name));
  const out: number[] = [];
  for (let at = SEGMENT_HEADER_BYTES; at < bytes.length; at += 8 + bytes.readUInt32LE(at))
    out.push(at);
  return out;
}

function flipByte(name: string, at: number): void {
  const bytes = nodeFs.readFileSync(path(name));
  bytes[at]! ^= 0x40;
  nodeFs.writeFileSync(path(name), bytes);
}

/** Writes entries 1..n of group A, one sync each, and closes the engine. */
function writeEntries(n: number, options: LogEngineOptions = {}): void {
  const log = open(options);
  for (let i = 1; i <= n; i++) {
    log.write([{ group: A, entries: [ent(i, 1, new Uint8Array(20).fill(i))] }]);
    log.sync();
  }
  log.close();
}

function assertCorruption(fn: () => unknown, file: string, offset: number): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof TesseraError, `expected a TesseraError, got ${String(e)}`);
    assert.equal(e.code, 'CORRUPTION');
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    assert.ok(
      e.message.includes(`byte offset ${offset}`),
      `message names offset ${offset}: ${e.message}`,
    );
    return true;
  });
}

/** A FileSystem wrapper that counts calls and can flip a bit in chosen reads. */
class ProbeFs implements FileSystem {
  appends = 0;
  fsyncs = 0;
  dirFsyncs = 0;
  failFsync = false;
  /** readFile calls (by file name) to corrupt: the nth call (0-based) flips a bit at `at`. */
  flips: { name: string; call: number; at: number }[] = [];
  private readonly reads = new Map<string, number>();

  mkdirp(d: string): void {
    realFs.mkdirp(d);
  }
  list(d: string): string[] {
    return realFs.list(d);
  }
  exists(p: string): boolean {
    return realFs.exists(p);
  }
  readFile(p: string): Uint8Array {
    const name = nodePath.basename(p);
    const call = this.reads.get(name) ?? 0;
    this.reads.set(name, call + 1);
    const bytes = realFs.readFile(p).slice();
    for (const f of this.flips) if (f.name === name && f.call === call) bytes[f.at]! ^= 0x01;
    return bytes;
  }
  openAppend(p: string): AppendFile {
    const file = realFs.openAppend(p);
    return {
      path: file.path,
      append: (data) => {
        this.appends++;
        file.append(data);
      },
      fsync: () => {
        if (this.failFsync) throw new Error('EIO: i/o error, fsync');
        this.fsyncs++;
        file.fsync();
      },
      size: () => file.size(),
      close: () => file.close(),
    };
  }
  truncate(p: string, size: number): void {
    realFs.truncate(p, size);
  }
  unlink(p: string): void {
    realFs.unlink(p);
  }
  rename(from: string, to: string): void {
    realFs.rename(from, to);
  }
  fsyncDir(d: string): void {
    this.dirFsyncs++;
    realFs.fsyncDir(d);
  }
}

describe('LogEngine recovery', () => {
  it('truncates a record cut short at the end of the last segment and keeps every complete one', () => {
    writeEntries(3);
    const offsets = recordOffsets(SEG1);
    const full = sizeOf(SEG1);
    nodeFs.truncateSync(path(SEG1), full - 5);
    const log = open();
    assert.ok(log.tornTail !== null && log.tornTail.reason.includes('incomplete record'));
    assert.deepEqual(
      log.load(A).entries.map((e) => e.index),
      [1, 2],
    );
    assert.equal(sizeOf(SEG1), offsets[2]);
    log.write([{ group: A, entries: [ent(3, 2)] }]);
    log.sync();
    log.close();
    const again = open();
    assert.equal(again.tornTail, null);
    assert.deepEqual(again.load(A).entries, [
      ent(1, 1, new Uint8Array(20).fill(1)),
      ent(2, 1, new Uint8Array(20).fill(2)),
      ent(3, 2),
    ]);
    again.close();
  });

  it('truncates a torn length prefix', () => {
    writeEntries(2);
    const full = sizeOf(SEG1);
    nodeFs.appendFileSync(path(SEG1), Buffer.from([0x30, 0x00]));
    const log = open();
    assert.equal(log.load(A).entries.length, 2);
    assert.equal(sizeOf(SEG1), full);
    log.close();
  });

  for (const [what, garbage] of [
    ['random bytes', Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 167 + 13) & 0xff))],
    ['zeros (a file extended but never written)', Buffer.alloc(4096)],
    [
      'a plausible header whose record never arrived',
      Buffer.from([0x40, 0, 0, 0, 1, 2, 3, 4, 1, 1]),
    ],
  ] as const) {
    it(`truncates ${what} appended after the last record`, () => {
      writeEntries(3);
      const full = sizeOf(SEG1);
      nodeFs.appendFileSync(path(SEG1), garbage);
      const log = open();
      assert.notEqual(log.tornTail, null);
      assert.equal(log.load(A).entries.length, 3);
      assert.equal(sizeOf(SEG1), full);
      log.close();
    });
  }

  it('truncates a complete record whose checksum fails at the very end', () => {
    writeEntries(3);
    const offsets = recordOffsets(SEG1);
    flipByte(SEG1, offsets[2]! + RECORD_HEADER_BYTES + 3);
    const log = open();
    assert.ok(log.tornTail?.reason.includes('checksum mismatch'));
    assert.equal(log.load(A).entries.length, 2);
    assert.equal(sizeOf(SEG1), offsets[2]);
    log.close();
  });

  it('truncates a torn header of a new segment and keeps writing there', () => {
    writeEntries(2);
    nodeFs.writeFileSync(path(SEG2), encodeSegmentHeader(2).subarray(0, 10));
    const log = open();
    assert.ok(log.tornTail?.reason.includes('segment header'));
    assert.equal(sizeOf(SEG2), 0);
    log.write([{ group: A, entries: [ent(3, 1)] }]);
    log.sync();
    log.close();
    const again = open();
    assert.deepEqual(
      again.load(A).entries.map((e) => e.index),
      [1, 2, 3],
    );
    assert.deepEqual(segmentFiles(), [SEG1, SEG2]);
    again.close();
  });

  it('refuses to start on a flipped byte in a non-last segment, naming file and offset', () => {
    writeEntries(12, { segmentBytesMax: 256 });
    assert.ok(segmentFiles().length >= 3);
    const offsets = recordOffsets(SEG1);
    assert.ok(offsets.length >= 2);
    flipByte(SEG1, offsets[1]! + 20);
    assertCorruption(() => open({ segmentBytesMax: 256 }), SEG1, offsets[1]!);
  });

  it('refuses to start on a flipped byte in the last segment when valid records follow', () => {
    writeEntries(4);
    const offsets = recordOffsets(SEG1);
    flipByte(SEG1, offsets[1]! + 30);
    assertCorruption(() => open(), SEG1, offsets[1]!);
    assert.equal(sizeOf(SEG1), offsets[3]! + (offsets[3]! - offsets[2]!), 'nothing truncated');
  });

  it('refuses to start on an over-long length prefix in the middle (RECORD_BYTES_MAX on read)', () => {
    writeEntries(3);
    const offsets = recordOffsets(SEG1);
    const bytes = nodeFs.readFileSync(path(SEG1));
    bytes.writeUInt32LE(RECORD_BYTES_MAX, offsets[1]!);
    nodeFs.writeFileSync(path(SEG1), bytes);
    assert.throws(
      () => open(),
      (e) =>
        e instanceof TesseraError &&
        /exceeds RECORD_BYTES_MAX/.test(e.message) &&
        e.message.includes(`byte offset ${offsets[1]}`),
    );
  });

  it('refuses to start on a malformed record with a valid checksum, even at the tail', () => {
    writeEntries(2);
    const full = sizeOf(SEG1);
    const record = Buffer.alloc(RECORD_HEADER_BYTES);
    record.writeUInt32LE(RECORD_HEADER_BYTES - 8, 0);
    record[8] = 9; // no such record type
    record.writeUInt32LE(crc32c(record, 8), 4);
    nodeFs.appendFileSync(path(SEG1), record);
    assertCorruption(() => open(), SEG1, full);
  });

  it('refuses to start when a segment in the middle of the sequence is missing', () => {
    writeEntries(12, { segmentBytesMax: 256 });
    assert.ok(segmentFiles().length >= 3);
    nodeFs.unlinkSync(path(SEG2));
    assert.throws(
      () => open(),
      (e) => e instanceof TesseraError && e.code === 'CORRUPTION' && /missing/.test(e.message),
    );
  });

  it('ignores files that are not segments', () => {
    writeEntries(2);
    nodeFs.writeFileSync(path('notes.txt'), 'hello');
    nodeFs.writeFileSync(path('1.wal'), 'not padded');
    const log = open();
    assert.equal(log.load(A).entries.length, 2);
    log.close();
  });

  it('a transient read fault never truncates durable data', () => {
    writeEntries(3);
    const offsets = recordOffsets(SEG1);
    const fs = new ProbeFs();
    // The first read of the segment flips a bit in its last record.
    fs.flips.push({ name: SEG1, call: 0, at: offsets[2]! + 12 });
    const log = open({}, fs);
    assert.equal(log.tornTail, null);
    assert.equal(log.load(A).entries.length, 3);
    assert.equal(sizeOf(SEG1), offsets[2]! + (offsets[2]! - offsets[1]!));
    log.close();
  });

  it('load() retries a read that fails its checksum once', () => {
    writeEntries(3);
    const offsets = recordOffsets(SEG1);
    const fs = new ProbeFs();
    fs.flips.push({ name: SEG1, call: 1, at: offsets[0]! + 40 }); // call 0 is recovery
    const log = open({}, fs);
    assert.equal(log.load(A).entries[0]!.data[0], 1);
    log.close();
  });

  it('load() reports CORRUPTION naming file and offset when damage persists', () => {
    writeEntries(3);
    const offsets = recordOffsets(SEG1);
    const fs = new ProbeFs();
    fs.flips.push(
      { name: SEG1, call: 1, at: offsets[0]! + 40 },
      { name: SEG1, call: 2, at: offsets[0]! + 40 },
    );
    const log = open({}, fs);
    assertCorruption(() => log.load(A), SEG1, offsets[0]!);
    log.close();
  });
});

describe('LogEngine writes', () => {
  it('group commit: one append and one fsync cover every group staged before sync', () => {
    const fs = new ProbeFs();
    const log = open({}, fs);
    const before = { appends: fs.appends, fsyncs: fs.fsyncs };
    log.write([{ group: A, entries: ents(1, 3, 1), hardState: hs(1, 1, 0) }]);
    log.write([{ group: B, snapshot: snap(4, 1), entries: ents(5, 6, 1) }]);
    log.write([{ group: rangeId(3), hardState: hs(2, 0, 0) }]);
    log.sync();
    assert.equal(fs.appends - before.appends, 1);
    assert.equal(fs.fsyncs - before.fsyncs, 1);
    log.sync(); // nothing staged: no I/O
    assert.equal(fs.fsyncs - before.fsyncs, 1);
    log.close();
  });

  it('rolls to a new segment past segmentBytesMax, at sync time', () => {
    const log = open({ segmentBytesMax: 512 });
    for (let i = 1; i <= 40; i++) {
      log.write([{ group: A, entries: [ent(i, 1, new Uint8Array(100).fill(i))] }]);
      if (i % 2 === 0) log.sync();
    }
    log.close();
    const files = segmentFiles();
    assert.ok(files.length >= 10, `segments: ${files.join(' ')}`);
    files.forEach((f, i) => assert.equal(f, `${String(i + 1).padStart(8, '0')}.wal`));
    for (const f of files.slice(0, -1)) assert.ok(sizeOf(f) <= 512, `${f} is ${sizeOf(f)} bytes`);
    const again = open({ segmentBytesMax: 512 });
    assert.deepEqual(
      again.load(A).entries.map((e) => e.data[0]),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    again.close();
  });

  it('a batch larger than a segment goes into one segment of its own', () => {
    const log = open({ segmentBytesMax: 256 });
    log.write([{ group: A, entries: ents(1, 1, 1) }]);
    log.sync();
    log.write([{ group: A, entries: [ent(2, 1, new Uint8Array(1000))] }]);
    log.sync();
    log.close();
    assert.deepEqual(segmentFiles(), [SEG1, SEG2]);
    assert.ok(sizeOf(SEG2) > 1000);
  });

  it('deletes segments once every group compacted past them, not while one still needs them', () => {
    const opts = { segmentBytesMax: 512 };
    const log = open(opts);
    log.write([
      { group: A, hardState: hs(1, 1, 0) },
      { group: B, snapshot: snap(10, 1) },
    ]);
    for (let i = 1; i <= 20; i++) {
      log.write([
        { group: A, entries: [ent(i, 1, new Uint8Array(60))] },
        { group: B, entries: [ent(10 + i, 1, new Uint8Array(60))] },
      ]);
      log.sync();
    }
    const before = segmentFiles();
    assert.ok(before.length >= 5, `segments: ${before.join(' ')}`);

    log.write([{ group: A, snapshot: snap(20, 1) }]);
    log.compact(A, 20);
    log.sync();
    assert.deepEqual(segmentFiles(), before, 'group B still needs every segment');

    log.compact(B, 25);
    log.sync();
    const middle = segmentFiles();
    assert.ok(middle.length < before.length && middle.length > 1, `segments: ${middle.join(' ')}`);
    assert.equal(middle[middle.length - 1], before[before.length - 1]);

    log.write([{ group: B, snapshot: snap(30, 1) }]);
    log.sync();
    assert.deepEqual(
      segmentFiles(),
      [before[before.length - 1]],
      'only the active segment is left',
    );
    log.close();

    // The checkpoint kept what lived only in the deleted segments.
    const again = open(opts);
    assert.deepEqual(again.groups(), [A, B]);
    assert.deepEqual(again.load(A), { hardState: hs(1, 1, 0), snapshot: snap(20, 1), entries: [] });
    assert.deepEqual(again.load(B), { hardState: hs(0, 0, 0), snapshot: snap(30, 1), entries: [] });
    again.write([{ group: B, entries: [ent(31, 2)] }]);
    again.sync();
    again.close();
  });

  it('a record over RECORD_BYTES_MAX is a programmer error, and nothing is staged', () => {
    const log = open();
    assert.throws(
      () => log.write([{ group: A, entries: [ent(1, 1, new Uint8Array(RECORD_BYTES_MAX))] }]),
      AssertionError,
    );
    assert.deepEqual(log.groups(), []);
    log.write([
      {
        group: A,
        entries: [ent(1, 1, new Uint8Array(RECORD_BYTES_MAX - RECORD_HEADER_BYTES - 6))],
      },
    ]);
    log.sync();
    log.close();
    const again = open();
    assert.equal(again.load(A).entries[0]!.data.length, RECORD_BYTES_MAX - RECORD_HEADER_BYTES - 6);
    again.close();
  });

  it('staging beyond stagedBytesMax is a programmer error', () => {
    const log = open({ stagedBytesMax: 1000 });
    assert.throws(() => log.write([{ group: A, entries: ents(1, 50, 1) }]), AssertionError);
    log.close();
  });

  it('after a failed fsync the engine refuses further use', () => {
    const fs = new ProbeFs();
    const log = open({}, fs);
    log.write([{ group: A, entries: ents(1, 1, 1) }]);
    fs.failFsync = true;
    assert.throws(() => log.sync(), /EIO/);
    fs.failFsync = false;
    assert.throws(() => log.load(A), /EIO/);
    assert.throws(() => log.sync(), /EIO/);
    log.close();
  });

  it('canary ack-before-fsync: sync() returns before its fsync', () => {
    const fs = new ProbeFs();
    const log = open({ ackBeforeFsync: true }, fs);
    const before = fs.fsyncs;
    log.write([{ group: A, entries: ents(1, 1, 1) }]);
    log.sync();
    assert.equal(fs.fsyncs, before, 'acknowledged without an fsync');
    log.write([{ group: A, entries: ents(2, 2, 1) }]);
    log.sync();
    assert.equal(fs.fsyncs, before + 1, 'the deferred fsync runs at the next sync');
    log.close();
  });
});

describe('recovery under transient read faults', () => {
  it('never truncates durable records, however often reads flip bits', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const faults = { tornWrites: false, readBitFlipRate: 0 };
      const disk = new SimDisk(new SeededRng(seed), faults);
      const g = rangeId(1);
      let log = LogEngine.open(disk, '/wal', { segmentBytesMax: 1024 });
      let last = 0;
      for (let round = 0; round < 12; round++) {
        const entries = Array.from({ length: 3 }, () => {
          last++;
          return {
            term: term(1),
            index: logIndex(last),
            type: 'normal' as const,
            data: new Uint8Array(40).fill(last),
          };
        });
        log.write([{ group: g, entries }]);
        log.sync();
        disk.crash();
        faults.readBitFlipRate = 0.5;
        // A refusal to start is fine (the reads are retried); losing synced entries is not.
        for (let attempt = 0; ; attempt++) {
          try {
            log = LogEngine.open(disk, '/wal', { segmentBytesMax: 1024 });
            break;
          } catch (e) {
            assert.ok(e instanceof TesseraError && e.code === 'CORRUPTION', String(e));
            assert.ok(attempt < 200, 'recovery never succeeded');
          }
        }
        faults.readBitFlipRate = 0;
        const got = log.load(g).entries;
        assert.equal(
          got[got.length - 1]?.index,
          last,
          `seed ${seed} round ${round}: synced entries lost`,
        );
      }
    }
  });
});
