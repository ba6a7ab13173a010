// Runs the LogStorage conformance suite on every implementation: the
// in-memory reference, the log engine on the real disk and on the simulated disk (small segments,
// so rolling, checkpoints and segment deletion happen often). Also tests the
// async GroupCommitter (src/node/group-commit.ts) over a LogStorage.
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { describe, it } from 'node:test';

import { TesseraError } from '../../src/core/errors.ts';
import { rangeId } from '../../src/core/ids.ts';
import { NodeFileSystem } from '../../src/node/fs.ts';
import { GroupCommitter } from '../../src/node/group-commit.ts';
import type { GroupWrite, LogStorage } from '../../src/storage/log-storage.ts';
import { MemoryLogStorage } from '../../src/storage/memory-log-storage.ts';
import { LogEngine } from '../../src/storage/wal/log-engine.ts';
import { SeededRng } from '../../src/core/rng.ts';
import { SimDisk } from '../../src/sim/disk.ts';
import { ents, runLogStorageSuite } from './log-storage-suite.ts';

runLogStorageSuite('MemoryLogStorage', () => ({ open: () => new MemoryLogStorage() }));

for (const segmentBytesMax of [256, 4096]) {
  runLogStorageSuite(`LogEngine on NodeFileSystem (segmentBytesMax ${segmentBytesMax})`, () => {
    const dir = nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), 'tessera-log-storage-'));
    const fs = new NodeFileSystem();
    const open = (): LogStorage => LogEngine.open(fs, `${dir}/wal`, { segmentBytesMax });
    return {
      open,
      reopen: open,
      dispose: () => nodeFs.rmSync(dir, { recursive: true, force: true }),
    };
  });
}

// The log engine on the simulated disk: reopening is a crash (unsynced bytes
// lost or torn) followed by recovery.
for (const seed of [1, 2]) {
  runLogStorageSuite(
    `LogEngine on SimDisk, reopen after a crash with torn writes (seed ${seed})`,
    () => {
      const disk = new SimDisk(new SeededRng(seed), { tornWrites: true, readBitFlipRate: 0 });
      const open = (): LogStorage => LogEngine.open(disk, '/wal', { segmentBytesMax: 512 });
      return {
        open,
        reopen: () => {
          disk.crash();
          return open();
        },
      };
    },
  );
}

/** A LogStorage that counts syncs and can be made to fail. */
class CountingStorage extends MemoryLogStorage {
  syncs = 0;
  writes = 0;
  failNextSync = false;

  override write(writes: readonly GroupWrite[]): void {
    this.writes++;
    super.write(writes);
  }

  override sync(): void {
    if (this.failNextSync) throw new Error('EIO: fsync failed');
    this.syncs++;
  }
}

const g = rangeId(1);

describe('GroupCommitter', () => {
  it('covers appends that arrive together with one sync, and resolves after it', async () => {
    const storage = new CountingStorage();
    const gc = new GroupCommitter(storage, { waitMaxMicros: 1000 });
    const done = [1, 2, 3, 4].map((i) =>
      gc.append([{ group: rangeId(i), entries: ents(1, 2, 1) }]),
    );
    assert.equal(storage.syncs, 0);
    await Promise.all(done);
    assert.equal(storage.syncs, 1);
    assert.equal(storage.writes, 4);
    assert.deepEqual(storage.groups(), [1, 2, 3, 4]);
    await gc.close();
  });

  it('keeps call order and starts a new batch for later appends', async () => {
    const storage = new CountingStorage();
    const gc = new GroupCommitter(storage, { waitMaxMicros: 0 });
    await gc.append([{ group: g, entries: ents(1, 3, 1) }]);
    const a = gc.append([{ group: g, entries: ents(2, 2, 2) }]);
    const b = gc.append([{ group: g, entries: ents(3, 3, 2) }]);
    await Promise.all([a, b]);
    assert.equal(storage.syncs, 2);
    assert.deepEqual(storage.load(g).entries, [...ents(1, 1, 1), ...ents(2, 3, 2)]);
  });

  it('splits batches at batchBytesMax', async () => {
    const storage = new CountingStorage();
    const gc = new GroupCommitter(storage, {
      waitMaxMicros: 0,
      batchBytesMax: 200,
      queuedBytesMax: 10_000,
    });
    await Promise.all(
      [1, 2, 3, 4].map((i) => gc.append([{ group: rangeId(i), entries: ents(1, 2, 1) }])),
    );
    assert.ok(storage.syncs >= 2, `expected several syncs, got ${storage.syncs}`);
  });

  it('rejects with RESOURCE_EXHAUSTED when the queue is full, REQUEST_TOO_LARGE when one append cannot fit', async () => {
    const storage = new CountingStorage();
    const gc = new GroupCommitter(storage, { batchBytesMax: 100, queuedBytesMax: 200 });
    const ok = gc.append([{ group: g, entries: ents(1, 2, 1) }]);
    const full = gc.append([{ group: g, entries: ents(3, 4, 1) }]);
    await assert.rejects(full, (e) => e instanceof TesseraError && e.code === 'RESOURCE_EXHAUSTED');
    await ok;
    await assert.rejects(
      gc.append([{ group: g, entries: ents(3, 8, 1) }]),
      (e) => e instanceof TesseraError && e.code === 'REQUEST_TOO_LARGE',
    );
  });

  it('after a failed sync rejects the batch, the queue and every later append', async () => {
    const storage = new CountingStorage();
    const gc = new GroupCommitter(storage, { waitMaxMicros: 0 });
    storage.failNextSync = true;
    await assert.rejects(gc.append([{ group: g, entries: ents(1, 1, 1) }]), /EIO/);
    await assert.rejects(gc.append([{ group: g, entries: ents(2, 2, 1) }]), /EIO/);
  });

  it('close syncs what is queued and refuses new appends', async () => {
    const storage = new CountingStorage();
    const gc = new GroupCommitter(storage, { waitMaxMicros: 1_000_000 });
    const p = gc.append([{ group: g, entries: ents(1, 1, 1) }]);
    await gc.close();
    await p;
    assert.equal(storage.syncs, 1);
    await assert.rejects(
      gc.append([]),
      (e) => e instanceof TesseraError && e.code === 'UNAVAILABLE',
    );
  });

  it('works over the log engine', async () => {
    const dir = nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), 'tessera-group-commit-'));
    try {
      const engine = LogEngine.open(new NodeFileSystem(), dir);
      const gc = new GroupCommitter(engine);
      await Promise.all(
        [1, 2, 3].map((i) => gc.append([{ group: rangeId(i), entries: ents(1, 5, 1) }])),
      );
      await gc.close();
      engine.close();
      const reopened = LogEngine.open(new NodeFileSystem(), dir);
      assert.deepEqual(reopened.load(rangeId(3)).entries, ents(1, 5, 1));
      reopened.close();
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
