// SeededRng: deterministic per seed, in bounds, and roughly uniform. Every
// check uses fixed seeds, so the outcome never varies between runs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SeededRng } from '../../src/core/rng.ts';

function draw(rng: SeededRng, n: number): number[] {
  return Array.from({ length: n }, () => rng.nextU32());
}

/** Pearson's chi-square statistic of observed counts against a uniform expectation. */
function chiSquare(counts: readonly number[], total: number): number {
  const expected = total / counts.length;
  return counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
}

describe('SeededRng', () => {
  it('replays the same sequence for the same seed', () => {
    for (const seed of [0, 1, 42, 0xffffffff, 123456789]) {
      assert.deepEqual(draw(new SeededRng(seed), 1000), draw(new SeededRng(seed), 1000));
    }
    const a = new SeededRng(7);
    const b = new SeededRng(7);
    for (let i = 0; i < 1000; i++) {
      assert.equal(a.next(), b.next());
      assert.equal(a.int(-5, 17), b.int(-5, 17));
      assert.equal(a.chance(0.3), b.chance(0.3));
    }
  });

  it('gives different sequences for different seeds', () => {
    const firsts = new Set<string>();
    for (let seed = 0; seed < 200; seed++) firsts.add(draw(new SeededRng(seed), 4).join(','));
    assert.equal(firsts.size, 200, 'seeds 0..199 all start differently');
    const a = draw(new SeededRng(1), 1000);
    const b = draw(new SeededRng(2), 1000);
    const same = a.filter((x, i) => x === b[i]).length;
    assert.ok(same <= 1, `seeds 1 and 2 agree at ${same} of 1000 positions`);
  });

  it('forks independent but deterministic generators', () => {
    const parent1 = new SeededRng(99);
    const parent2 = new SeededRng(99);
    const child1 = parent1.fork();
    const child2 = parent2.fork();
    assert.deepEqual(draw(child1, 100), draw(child2, 100));
    assert.notDeepEqual(draw(parent1, 100), draw(new SeededRng(99).fork(), 100));
  });

  it('next() stays in [0, 1)', () => {
    const rng = new SeededRng(2024);
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next();
      assert.ok(x >= 0 && x < 1, `next() = ${x}`);
    }
  });

  it('int(min, max) stays in bounds and hits both ends', () => {
    const rng = new SeededRng(31337);
    for (const [min, max] of [
      [0, 9],
      [1, 6],
      [-3, 3],
      [-10, -8],
      [1000, 1001],
      [0, 255],
    ] as const) {
      const seen = new Set<number>();
      for (let i = 0; i < 20_000; i++) {
        const x = rng.int(min, max);
        assert.ok(Number.isInteger(x), `int(${min}, ${max}) = ${x} is not an integer`);
        assert.ok(x >= min && x <= max, `int(${min}, ${max}) = ${x} out of bounds`);
        seen.add(x);
      }
      assert.ok(seen.has(min), `int(${min}, ${max}) never returned ${min}`);
      assert.ok(seen.has(max), `int(${min}, ${max}) never returned ${max}`);
      assert.equal(seen.size, max - min + 1, `int(${min}, ${max}) missed values`);
    }
    for (let i = 0; i < 100; i++) assert.equal(rng.int(5, 5), 5);
  });

  it('next() is roughly uniform (chi-square over 100k samples)', () => {
    const rng = new SeededRng(12345);
    const bins = 100;
    const samples = 100_000;
    const counts = new Array<number>(bins).fill(0);
    let sum = 0;
    for (let i = 0; i < samples; i++) {
      const x = rng.next();
      sum += x;
      counts[Math.floor(x * bins)]!++;
    }
    // 99 degrees of freedom: mean 99, sd ~14; 200 is beyond p < 1e-8 for a fair source.
    const stat = chiSquare(counts, samples);
    assert.ok(stat < 200, `chi-square ${stat.toFixed(1)} over ${bins} bins is too high`);
    const mean = sum / samples;
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean} is far from 0.5`);
  });

  it('int() is roughly uniform and chance(p) matches p', () => {
    const rng = new SeededRng(777);
    const samples = 60_000;
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < samples; i++) counts[rng.int(1, 6) - 1]!++;
    // 5 degrees of freedom: mean 5; 30 is beyond p < 1e-4.
    const stat = chiSquare(counts, samples);
    assert.ok(stat < 30, `chi-square ${stat.toFixed(1)} for int(1, 6) is too high`);

    let hits = 0;
    for (let i = 0; i < samples; i++) if (rng.chance(0.25)) hits++;
    assert.ok(Math.abs(hits / samples - 0.25) < 0.01, `chance(0.25) hit ${hits} of ${samples}`);
    assert.ok(!Array.from({ length: 1000 }, () => rng.chance(0)).some(Boolean), 'chance(0)');
    assert.ok(Array.from({ length: 1000 }, () => rng.chance(1)).every(Boolean), 'chance(1)');
  });
});
