// Runs the StateEngine conformance suite on every implementation, plus the
// checks only the LMDB engine needs: size limits, reopen, format version.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { open } from 'lmdb';

import { isTesseraError } from '../../src/core/errors.ts';
import type { ErrorCode } from '../../src/core/errors.ts';
import { logIndex, nodeId, rangeId, term } from '../../src/core/ids.ts';
import type { SnapshotMeta } from '../../src/raft/types.ts';
import {
  LmdbStateEngine,
  STATE_KEY_BYTES_MAX,
  STATE_VALUE_BYTES_MAX,
} from '../../src/storage/engine/lmdb-state-engine.ts';
import { MemoryStateEngine } from '../../src/storage/memory-state-engine.ts';
import type { StateEngine } from '../../src/storage/state-engine.ts';
import { runStateEngineSuite } from './state-engine-suite.ts';

/** A temp directory for the whole file, removed at the end. */
let root = '';
let dirs = 0;
const paths = new WeakMap<StateEngine, string>();

before(() => {
  root = mkdtempSync(join(tmpdir(), 'tessera-state-engine-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

function openLmdb(): LmdbStateEngine {
  const path = join(root, `env-${++dirs}`);
  const e = LmdbStateEngine.open(path);
  paths.set(e, path);
  return e;
}

function reopenLmdb(e: StateEngine): LmdbStateEngine {
  const path = paths.get(e);
  assert.ok(path !== undefined, 'reopen of an engine this file did not open');
  e.close();
  const next = LmdbStateEngine.open(path);
  paths.set(next, path);
  return next;
}

runStateEngineSuite('MemoryStateEngine', { open: () => new MemoryStateEngine() });
// Each LMDB commit is two fsyncs; fewer model runs keep the file fast.
runStateEngineSuite('LmdbStateEngine', { open: openLmdb, reopen: reopenLmdb, propertyRuns: 30 });

const R1 = rangeId(1);
const enc = new TextEncoder();
const hex = (x: Uint8Array): string => Buffer.from(x).toString('hex');
const applied = (index: number): SnapshotMeta => ({
  index: logIndex(index),
  term: term(1),
  conf: { voters: [nodeId(1)], votersOutgoing: [], learners: [] },
});
const hasCode =
  (code: ErrorCode) =>
  (e: unknown): boolean =>
    isTesseraError(e) && e.code === code;

/** Writes one key straight into the LMDB environment at `path`, bypassing the engine. */
function writeRaw(path: string, key: Uint8Array, value: Uint8Array): void {
  const db = open<Uint8Array, Uint8Array>(path, {
    keyEncoding: 'binary',
    encoding: 'binary',
    overlappingSync: false,
  });
  db.putSync(key, value);
  void db.close();
}

describe('snapshot streams cross engines', () => {
  it('a MemoryStateEngine export imports into LMDB and back', () => {
    const mem = new MemoryStateEngine();
    const lmdb = openLmdb();
    try {
      const puts: Array<[Uint8Array, Uint8Array]> = [];
      for (let i = 0; i < 300; i++)
        puts.push([Uint8Array.of(0xff, i & 0xff, i >> 8), enc.encode(`v${i}`)]);
      mem.commit({ range: R1, puts, deletes: [], applied: applied(12) });
      lmdb.importSnapshot(rangeId(4), mem.exportSnapshot(R1, 200));
      const back = new MemoryStateEngine();
      back.importSnapshot(R1, lmdb.exportSnapshot(rangeId(4), 333));
      const all = (e: StateEngine, r = R1): string[] =>
        e.scan(r, new Uint8Array(0), undefined, Infinity).map(([k, v]) => `${hex(k)}=${hex(v)}`);
      assert.deepEqual(all(lmdb, rangeId(4)), all(mem));
      assert.deepEqual(all(back), all(mem));
      assert.deepEqual(back.applied(R1), applied(12));
    } finally {
      lmdb.close();
    }
  });
});

describe('LmdbStateEngine', () => {
  it('a key or value over the limit throws and commits nothing', () => {
    let e = openLmdb();
    try {
      e.commit({
        range: R1,
        puts: [[enc.encode('a'), enc.encode('1')]],
        deletes: [],
        applied: applied(1),
      });
      const okKey = new Uint8Array(STATE_KEY_BYTES_MAX).fill(0xff);
      const okValue = new Uint8Array(STATE_VALUE_BYTES_MAX).fill(7);
      const cases: Array<{
        code: ErrorCode;
        puts: Array<[Uint8Array, Uint8Array]>;
        deletes: Uint8Array[];
      }> = [
        {
          code: 'KEY_TOO_LARGE',
          puts: [
            [enc.encode('b'), enc.encode('2')],
            [new Uint8Array(STATE_KEY_BYTES_MAX + 1), enc.encode('x')],
          ],
          deletes: [],
        },
        {
          code: 'KEY_TOO_LARGE',
          puts: [[enc.encode('b'), enc.encode('2')]],
          deletes: [new Uint8Array(STATE_KEY_BYTES_MAX + 1)],
        },
        {
          code: 'VALUE_TOO_LARGE',
          puts: [
            [enc.encode('b'), enc.encode('2')],
            [enc.encode('c'), new Uint8Array(STATE_VALUE_BYTES_MAX + 1)],
          ],
          deletes: [enc.encode('a')],
        },
      ];
      for (const c of cases) {
        assert.throws(
          () => e.commit({ range: R1, puts: c.puts, deletes: c.deletes, applied: applied(2) }),
          hasCode(c.code),
        );
        assert.equal(e.get(R1, enc.encode('b')), undefined, `${c.code}: nothing written`);
        assert.equal(
          hex(e.get(R1, enc.encode('a'))!),
          hex(enc.encode('1')),
          `${c.code}: nothing deleted`,
        );
        assert.deepEqual(e.applied(R1), applied(1), `${c.code}: applied position unchanged`);
      }
      // Exactly at the limits is fine, and survives a reopen.
      e.commit({ range: R1, puts: [[okKey, okValue]], deletes: [], applied: applied(2) });
      e = reopenLmdb(e);
      assert.equal(e.get(R1, okKey)!.length, STATE_VALUE_BYTES_MAX);
      assert.deepEqual(e.applied(R1), applied(2));
    } finally {
      e.close();
    }
  });

  it('reopen after close keeps data and applied positions of every range', () => {
    let e = openLmdb();
    try {
      for (let r = 1; r <= 5; r++) {
        for (let i = 1; i <= 20; i++) {
          e.commit({
            range: rangeId(r),
            puts: [[Uint8Array.of(i), Uint8Array.of(r, i)]],
            deletes: [],
            applied: applied(i),
          });
        }
      }
      e = reopenLmdb(e);
      e = reopenLmdb(e);
      for (let r = 1; r <= 5; r++) {
        assert.equal(e.scan(rangeId(r), new Uint8Array(0), undefined, Infinity).length, 20);
        assert.equal(hex(e.get(rangeId(r), Uint8Array.of(7))!), hex(Uint8Array.of(r, 7)));
        assert.deepEqual(e.applied(rangeId(r)), applied(20));
      }
    } finally {
      e.close();
    }
  });

  it('refuses an environment of another format version, or without one', () => {
    const bumped = join(root, 'format-v2');
    LmdbStateEngine.open(bumped).close();
    LmdbStateEngine.open(bumped).close(); // our own format reopens
    writeRaw(bumped, Uint8Array.of(0xff), Uint8Array.of(0, 0, 0, 2));
    assert.throws(() => LmdbStateEngine.open(bumped), hasCode('CORRUPTION'));

    const foreign = join(root, 'foreign');
    writeRaw(foreign, enc.encode('someone else'), enc.encode('data'));
    assert.throws(() => LmdbStateEngine.open(foreign), hasCode('CORRUPTION'));
  });
});
