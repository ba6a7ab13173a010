// SimDisk: a crash loses exactly what the durability rules of
// src/storage/fs.ts allow, and nothing more. Property tests compare the disk
// with a small reference model; every seed is fixed, so runs never vary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { AssertionError } from '../../src/core/assert.ts';
import { SeededRng } from '../../src/core/rng.ts';
import type { SimDiskFaults } from '../../src/sim/disk.ts';
import { SimDisk } from '../../src/sim/disk.ts';

const NO_FAULTS: SimDiskFaults = { tornWrites: false, readBitFlipRate: 0 };

function disk(seed = 1, faults: SimDiskFaults = { ...NO_FAULTS }): SimDisk {
  return new SimDisk(new SeededRng(seed), faults);
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** Writes `data` to a new file at `path` and makes both bytes and name durable. */
function writeDurable(d: SimDisk, dir: string, name: string, data: Uint8Array): void {
  const f = d.openAppend(`${dir}/${name}`);
  f.append(data);
  f.fsync();
  f.close();
  d.fsyncDir(dir);
}

function bitsDiffering(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let bits = 0;
  for (let i = 0; i < a.length; i++) {
    let x = a[i]! ^ b[i]!;
    while (x !== 0) {
      bits += x & 1;
      x >>>= 1;
    }
  }
  return bits;
}

describe('SimDisk file durability', () => {
  it('keeps fsynced bytes across a crash', () => {
    const d = disk();
    d.mkdirp('data');
    writeDurable(d, 'data', 'log', bytes(1, 2, 3));
    d.crash();
    assert.deepEqual(d.readFile('data/log'), bytes(1, 2, 3));
    d.crash();
    assert.deepEqual(d.readFile('data/log'), bytes(1, 2, 3), 'a second crash changes nothing');
  });

  it('loses unsynced appends on crash without torn writes', () => {
    const d = disk();
    d.mkdirp('data');
    writeDurable(d, 'data', 'log', bytes(1, 2));
    const f = d.openAppend('data/log');
    f.append(bytes(3, 4, 5));
    assert.equal(f.size(), 5);
    assert.deepEqual(d.readFile('data/log'), bytes(1, 2, 3, 4, 5));
    d.crash();
    assert.deepEqual(d.readFile('data/log'), bytes(1, 2));
    assert.equal(d.stats().tornCrashes, 0);
  });

  it('makes bytes appended through either of two handles durable on fsync of one', () => {
    const d = disk();
    d.mkdirp('data');
    const a = d.openAppend('data/log');
    d.fsyncDir('data');
    const b = d.openAppend('data/log');
    a.append(bytes(1));
    b.append(bytes(2));
    a.append(bytes(3));
    assert.equal(a.size(), 3);
    assert.equal(b.size(), 3);
    b.fsync();
    a.close();
    b.append(bytes(4)); // Closing `a` leaves `b` open.
    d.crash();
    assert.deepEqual(d.readFile('data/log'), bytes(1, 2, 3));
  });

  it('keeps a torn prefix only with tornWrites, and counts it', () => {
    let torn = 0;
    for (let seed = 0; seed < 50; seed++) {
      const d = disk(seed, { tornWrites: true, readBitFlipRate: 0 });
      d.mkdirp('data');
      writeDurable(d, 'data', 'log', bytes(9));
      const f = d.openAppend('data/log');
      f.append(bytes(1, 2, 3, 4, 5, 6, 7, 8));
      d.crash();
      const after = d.readFile('data/log');
      assert.deepEqual(after, bytes(9, 1, 2, 3, 4, 5, 6, 7, 8).subarray(0, after.length));
      assert.ok(after.length >= 1);
      const stats = d.stats();
      assert.equal(stats.tornFiles, after.length > 1 && after.length < 9 ? 1 : 0);
      assert.equal(d.faultsInjected, stats.tornFiles);
      torn += stats.tornCrashes;
    }
    assert.ok(torn > 30, `only ${torn} of 50 crashes tore the write`);
  });
});

describe('SimDisk directory durability', () => {
  it('drops a file created without fsyncDir, even if the file was fsynced', () => {
    const d = disk();
    d.mkdirp('data');
    const f = d.openAppend('data/new');
    f.append(bytes(1));
    f.fsync();
    d.crash();
    assert.equal(d.exists('data/new'), false);
    assert.deepEqual(d.list('data'), []);
  });

  it('keeps a file created and fsyncDir-ed', () => {
    const d = disk();
    d.mkdirp('data');
    d.openAppend('data/new');
    d.fsyncDir('data');
    d.crash();
    assert.equal(d.exists('data/new'), true);
    assert.deepEqual(d.readFile('data/new'), bytes());
  });

  it('undoes an unlink that was not fsyncDir-ed', () => {
    const d = disk();
    d.mkdirp('data');
    writeDurable(d, 'data', 'seg', bytes(7, 7));
    d.unlink('data/seg');
    assert.equal(d.exists('data/seg'), false);
    d.crash();
    assert.deepEqual(d.readFile('data/seg'), bytes(7, 7));
    d.unlink('data/seg');
    d.fsyncDir('data');
    d.crash();
    assert.equal(d.exists('data/seg'), false);
  });

  it('undoes a rename that was not fsyncDir-ed, including the replaced target', () => {
    const d = disk();
    d.mkdirp('data');
    writeDurable(d, 'data', 'tmp', bytes(1));
    writeDurable(d, 'data', 'current', bytes(2));
    d.rename('data/tmp', 'data/current');
    assert.deepEqual(d.list('data'), ['current']);
    assert.deepEqual(d.readFile('data/current'), bytes(1));
    d.crash();
    assert.deepEqual(d.list('data'), ['current', 'tmp']);
    assert.deepEqual(d.readFile('data/current'), bytes(2));
    assert.deepEqual(d.readFile('data/tmp'), bytes(1));
    d.rename('data/tmp', 'data/current');
    d.fsyncDir('data');
    d.crash();
    assert.deepEqual(d.list('data'), ['current']);
    assert.deepEqual(d.readFile('data/current'), bytes(1));
  });

  it('moves the file object on rename: a handle keeps appending to it', () => {
    const d = disk();
    d.mkdirp('data');
    const f = d.openAppend('data/a');
    f.append(bytes(1));
    d.rename('data/a', 'data/b');
    f.append(bytes(2));
    assert.deepEqual(d.readFile('data/b'), bytes(1, 2));
    d.rename('data/b', 'data/b'); // Renaming a file onto itself does nothing.
    assert.deepEqual(d.list('data'), ['b']);
  });

  it('keeps a file renamed across directories under both names if only the target is fsynced', () => {
    const d = disk();
    d.mkdirp('a');
    d.mkdirp('b');
    writeDurable(d, 'a', 'f', bytes(5));
    d.rename('a/f', 'b/f');
    d.fsyncDir('b');
    d.crash();
    assert.deepEqual(d.readFile('a/f'), bytes(5));
    assert.deepEqual(d.readFile('b/f'), bytes(5));
  });

  it('lets an unlinked file live on through its open handle', () => {
    const d = disk();
    d.mkdirp('data');
    const old = d.openAppend('data/f');
    d.unlink('data/f');
    old.append(bytes(1, 2));
    old.fsync();
    const fresh = d.openAppend('data/f');
    assert.equal(fresh.size(), 0);
    assert.deepEqual(d.readFile('data/f'), bytes());
  });

  it('makes mkdirp durable at once, parents included', () => {
    const d = disk();
    d.mkdirp('/x/y/z');
    d.mkdirp('x/y/z'); // Existing directories are fine.
    d.crash();
    assert.deepEqual(d.list('x/y'), ['z']);
    assert.deepEqual(d.list('/x/./y/../y/z'), []);
  });
});

describe('SimDisk truncate', () => {
  it('cuts and extends with zeros', () => {
    const d = disk();
    d.mkdirp('d');
    const f = d.openAppend('d/f');
    f.append(bytes(1, 2, 3, 4));
    d.truncate('d/f', 2);
    assert.equal(f.size(), 2);
    assert.deepEqual(d.readFile('d/f'), bytes(1, 2));
    f.append(bytes(5));
    d.truncate('d/f', 5);
    assert.deepEqual(d.readFile('d/f'), bytes(1, 2, 5, 0, 0));
  });

  it('loses an unsynced truncate into durable bytes on crash, even with torn writes', () => {
    for (let seed = 0; seed < 20; seed++) {
      const d = disk(seed, { tornWrites: true, readBitFlipRate: 0 });
      d.mkdirp('d');
      writeDurable(d, 'd', 'f', bytes(1, 2, 3, 4));
      d.truncate('d/f', 1);
      d.openAppend('d/f').append(bytes(8, 8, 8, 8, 8, 8));
      d.crash();
      assert.deepEqual(d.readFile('d/f'), bytes(1, 2, 3, 4));
    }
  });

  it('keeps a truncate once the file is fsynced', () => {
    const d = disk();
    d.mkdirp('d');
    writeDurable(d, 'd', 'f', bytes(1, 2, 3, 4));
    const f = d.openAppend('d/f');
    d.truncate('d/f', 1);
    f.fsync();
    d.crash();
    assert.deepEqual(d.readFile('d/f'), bytes(1));
  });

  it('drops unsynced bytes above the durable length after a truncate among them', () => {
    const d = disk();
    d.mkdirp('d');
    writeDurable(d, 'd', 'f', bytes(1, 2));
    d.openAppend('d/f').append(bytes(3, 4, 5));
    d.truncate('d/f', 3);
    d.crash();
    assert.deepEqual(d.readFile('d/f'), bytes(1, 2));
  });

  it('rejects a bad size or a missing file', () => {
    const d = disk();
    d.mkdirp('d');
    d.openAppend('d/f');
    assert.throws(() => d.truncate('d/f', -1), { code: 'EINVAL' });
    assert.throws(() => d.truncate('d/f', 1.5), { code: 'EINVAL' });
    assert.throws(() => d.truncate('d/missing', 0), { code: 'ENOENT' });
    assert.throws(() => d.truncate('d', 0), { code: 'EISDIR' });
  });
});

describe('SimDisk handles', () => {
  it('invalidates open handles on crash', () => {
    const d = disk();
    d.mkdirp('d');
    const f = d.openAppend('d/f');
    d.fsyncDir('d');
    d.crash();
    assert.throws(() => f.append(bytes(1)), { code: 'EBADF', message: /crash/ });
    assert.throws(() => f.fsync(), { code: 'EBADF' });
    assert.throws(() => f.size(), { code: 'EBADF' });
    assert.throws(() => f.close(), { code: 'EBADF' });
    const g = d.openAppend('d/f');
    g.append(bytes(1));
    assert.equal(g.size(), 1);
  });

  it('rejects use after close', () => {
    const d = disk();
    const f = d.openAppend('f');
    f.close();
    assert.throws(() => f.append(bytes(1)), { code: 'EBADF', message: /closed/ });
    assert.throws(() => f.close(), { code: 'EBADF' });
    assert.equal(f.path, 'f');
  });
});

describe('SimDisk errors and listing', () => {
  it('lists names sorted', () => {
    const d = disk();
    d.mkdirp('d/sub');
    for (const name of ['b', 'a10', 'a2', 'C', '_']) d.openAppend(`d/${name}`);
    assert.deepEqual(d.list('d'), ['C', '_', 'a10', 'a2', 'b', 'sub']);
    assert.deepEqual(d.list('/'), ['d']);
  });

  it('throws Node-like errors', () => {
    const d = disk();
    d.mkdirp('d');
    d.openAppend('d/f');
    assert.throws(() => d.readFile('d/missing'), {
      code: 'ENOENT',
      syscall: 'open',
      path: 'd/missing',
      message: "ENOENT: no such file or directory, open 'd/missing'",
    });
    assert.throws(() => d.list('nope'), { code: 'ENOENT' });
    assert.throws(() => d.list('d/f'), { code: 'ENOTDIR' });
    assert.throws(() => d.readFile('d'), { code: 'EISDIR' });
    assert.throws(() => d.readFile('d/f/x'), { code: 'ENOTDIR' });
    assert.throws(() => d.openAppend('nope/f'), { code: 'ENOENT' });
    assert.throws(() => d.openAppend('d'), { code: 'EISDIR' });
    assert.throws(() => d.openAppend('/'), { code: 'EISDIR' });
    assert.throws(() => d.unlink('d/missing'), { code: 'ENOENT' });
    assert.throws(() => d.unlink('d'), { code: 'EISDIR' });
    assert.throws(() => d.rename('d/missing', 'd/g'), { code: 'ENOENT' });
    assert.throws(() => d.rename('d/f', 'nope/g'), { code: 'ENOENT' });
    assert.throws(() => d.rename('d/f', 'd'), { code: 'EISDIR' });
    assert.throws(() => d.rename('d', 'e'), { code: 'ENOTSUP' });
    assert.throws(() => d.mkdirp('d/f'), { code: 'EEXIST' });
    assert.throws(() => d.mkdirp('d/f/g'), { code: 'ENOTDIR' });
    assert.throws(() => d.fsyncDir('nope'), { code: 'ENOENT' });
    assert.equal(d.exists('d/f'), true);
    assert.equal(d.exists('d'), true);
    assert.equal(d.exists('d/f/x'), false);
    assert.equal(d.exists('d/missing'), false);
  });
});

describe('SimDisk read bit flips', () => {
  it('flips exactly one bit at rate 1 and leaves the stored bytes intact', () => {
    const faults: SimDiskFaults = { tornWrites: false, readBitFlipRate: 1 };
    const d = disk(3, faults);
    const data = bytes(0, 0xff, 0x5a, 0x11, 0x80, 7, 8, 9);
    const f = d.openAppend('f');
    f.append(data);
    for (let i = 0; i < 100; i++) {
      assert.equal(bitsDiffering(d.readFile('f'), data), 1);
    }
    assert.equal(d.stats().readBitFlips, 100);
    assert.equal(d.faultsInjected, 100);
    faults.readBitFlipRate = 0; // Faults are read live: the simulator can switch them off.
    assert.deepEqual(d.readFile('f'), data);
    assert.deepEqual(d.readFile('f'), data);
    assert.equal(d.faultsInjected, 100);
  });

  it('hands out copies: mutating a read does not change the file', () => {
    const d = disk();
    d.openAppend('f').append(bytes(1, 2));
    d.readFile('f')[0] = 99;
    assert.deepEqual(d.readFile('f'), bytes(1, 2));
  });

  it('never flips a bit of an empty file', () => {
    const d = disk(1, { tornWrites: false, readBitFlipRate: 1 });
    d.openAppend('f');
    assert.deepEqual(d.readFile('f'), bytes());
    assert.equal(d.faultsInjected, 0);
  });

  it('rejects a rate outside [0, 1]', () => {
    assert.throws(() => disk(1, { tornWrites: false, readBitFlipRate: 1.5 }), AssertionError);
  });
});

describe('SimDisk latency', () => {
  it('draws plausible write and fsync latencies with a slow tail', () => {
    const d = disk(11);
    const fsyncs = Array.from({ length: 2000 }, () => d.latencyMs('fsync'));
    const writes = Array.from({ length: 2000 }, () => d.latencyMs('write'));
    assert.ok(fsyncs.every((ms) => ms >= 0.5 && ms <= 50));
    const slow = fsyncs.filter((ms) => ms > 5).length;
    assert.ok(slow > 10 && slow < 100, `${slow} of 2000 fsyncs slow`);
    assert.ok(writes.every((ms) => ms > 0 && ms <= 2));
    assert.ok(writes.filter((ms) => ms <= 0.1).length > 1900);
  });
});

// ---------------------------------------------------------------------------
// Property tests against a reference model.

const NAMES = ['a', 'b', 'c'] as const;
type Name = (typeof NAMES)[number];

type Op =
  | { kind: 'append'; name: Name; data: number[] }
  | { kind: 'fsync'; name: Name }
  | { kind: 'truncate'; name: Name; size: number }
  | { kind: 'unlink'; name: Name }
  | { kind: 'rename'; from: Name; to: Name }
  | { kind: 'fsyncDir' }
  | { kind: 'crash' };

const nameArb = fc.constantFrom(...NAMES);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      name: nameArb,
      data: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 6 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fsync' as const), name: nameArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('truncate' as const),
      name: nameArb,
      size: fc.integer({ min: 0, max: 20 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unlink' as const), name: nameArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('rename' as const), from: nameArb, to: nameArb }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fsyncDir' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const) }) },
);

/** The reference model of one file: its content as of its last fsync, and now. */
interface ModelFile {
  durable: number[];
  current: number[];
}

function startsWith(whole: readonly number[], prefix: readonly number[]): boolean {
  return prefix.length <= whole.length && prefix.every((b, i) => whole[i] === b);
}

/**
 * Runs `ops` against a SimDisk and the reference model of one directory,
 * checking after every step that the two agree; after a crash, that each
 * file holds an outcome the durability rules allow.
 */
function checkAgainstModel(seed: number, tornWrites: boolean, ops: readonly Op[]): void {
  const d = disk(seed, { tornWrites, readBitFlipRate: 0 });
  d.mkdirp('dir');
  const path = (name: Name): string => `dir/${name}`;
  let names = new Map<Name, ModelFile>();
  let durableNames = new Map<Name, ModelFile>();
  const fileFor = (name: Name): ModelFile => {
    let file = names.get(name);
    if (file === undefined) {
      file = { durable: [], current: [] };
      names.set(name, file);
    }
    return file;
  };

  for (const op of ops) {
    switch (op.kind) {
      case 'append':
        d.openAppend(path(op.name)).append(Uint8Array.from(op.data));
        fileFor(op.name).current.push(...op.data);
        break;
      case 'fsync': {
        d.openAppend(path(op.name)).fsync();
        const file = fileFor(op.name);
        file.durable = [...file.current];
        break;
      }
      case 'truncate': {
        const file = names.get(op.name);
        if (file === undefined) {
          assert.throws(() => d.truncate(path(op.name), op.size), { code: 'ENOENT' });
          break;
        }
        d.truncate(path(op.name), op.size);
        const kept = file.current.slice(0, op.size);
        file.current = [...kept, ...Array<number>(op.size - kept.length).fill(0)];
        break;
      }
      case 'unlink':
        if (!names.has(op.name)) {
          assert.throws(() => d.unlink(path(op.name)), { code: 'ENOENT' });
          break;
        }
        d.unlink(path(op.name));
        names.delete(op.name);
        break;
      case 'rename': {
        const file = names.get(op.from);
        if (file === undefined) {
          assert.throws(() => d.rename(path(op.from), path(op.to)), { code: 'ENOENT' });
          break;
        }
        d.rename(path(op.from), path(op.to));
        names.delete(op.from);
        names.set(op.to, file);
        break;
      }
      case 'fsyncDir':
        d.fsyncDir('dir');
        durableNames = new Map(names);
        break;
      case 'crash': {
        d.crash();
        names = new Map(durableNames);
        for (const [name, file] of names) {
          const survived = [...d.readFile(path(name))];
          assert.ok(
            startsWith(survived, file.durable),
            `${name}: survivor keeps the durable content`,
          );
          if (!tornWrites || !startsWith(file.current, file.durable)) {
            // No torn writes, or an unsynced truncate cut into durable bytes: exactly durable.
            assert.deepEqual(survived, file.durable, `${name}: exactly the durable content`);
          } else {
            assert.ok(startsWith(file.current, survived), `${name}: survivor is a prefix`);
          }
          file.durable = survived;
          file.current = [...survived];
        }
        break;
      }
    }
    assert.deepEqual(d.list('dir'), [...names.keys()].sort());
    for (const [name, file] of names) {
      assert.deepEqual([...d.readFile(path(name))], file.current, `${name} after ${op.kind}`);
    }
  }
}

describe('SimDisk against a reference model', () => {
  const opsArb = fc.array(opArb, { maxLength: 60 });

  it('loses exactly the unsynced state on crash without torn writes', () => {
    fc.assert(
      fc.property(fc.nat(), opsArb, (seed, ops) => checkAgainstModel(seed, false, ops)),
      { seed: 0x7e55e4a, numRuns: 300 },
    );
  });

  it('keeps the durable content plus a prefix of the unsynced tail with torn writes', () => {
    fc.assert(
      fc.property(fc.nat(), opsArb, (seed, ops) => checkAgainstModel(seed, true, ops)),
      { seed: 0xd15c, numRuns: 300 },
    );
  });
});

describe('SimDisk determinism', () => {
  /** Runs a script drawn from `seed` on a disk seeded with `seed`; returns everything observable. */
  function transcript(seed: number): unknown[] {
    const script = new SeededRng(seed ^ 0x5eed);
    const d = disk(seed, { tornWrites: true, readBitFlipRate: 0.2 });
    const out: unknown[] = [];
    d.mkdirp('d');
    for (let step = 0; step < 300; step++) {
      const name = `d/f${script.int(0, 3)}`;
      const roll = script.int(0, 9);
      if (roll < 5) {
        d.openAppend(name).append(Uint8Array.from({ length: script.int(1, 8) }, () => step));
      } else if (roll < 6) {
        d.openAppend(name).fsync();
      } else if (roll < 7) {
        d.fsyncDir('d');
      } else if (roll < 8) {
        d.crash();
      } else {
        out.push(d.exists(name) ? [...d.readFile(name)] : null);
      }
      out.push(d.latencyMs(roll < 6 ? 'write' : 'fsync'));
    }
    for (const name of d.list('d')) out.push(name, [...d.readFile(`d/${name}`)]);
    out.push(d.stats(), d.faultsInjected);
    return out;
  }

  it('replays the same seed and ops identically', () => {
    for (const seed of [0, 1, 2, 42, 0xffffffff]) {
      assert.deepEqual(transcript(seed), transcript(seed));
    }
  });

  it('differs between seeds', () => {
    assert.notDeepEqual(transcript(1), transcript(2));
  });
});
