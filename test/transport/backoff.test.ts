// Reconnect backoff: exponential, capped, jittered within [base/2, base].
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { backoffDelayMs } from '../../src/transport/backoff.ts';

const policy = { backoffMsMin: 50, backoffMsMax: 5_000 };

describe('backoffDelayMs', () => {
  it('doubles from the minimum up to the cap', () => {
    const high = (): number => 1 - Number.EPSILON;
    const bases = [1, 2, 3, 4, 8, 20, 1000].map((f) => Math.round(backoffDelayMs(f, policy, high)));
    assert.deepEqual(bases, [50, 100, 200, 400, 5000, 5000, 5000]);
    assert.equal(
      backoffDelayMs(1, policy, () => 0),
      25,
    );
  });

  it('stays within [base/2, base] for any failure count and jitter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (failures, r) => {
          const base = Math.min(
            policy.backoffMsMax,
            policy.backoffMsMin * 2 ** Math.min(failures - 1, 30),
          );
          const delay = backoffDelayMs(failures, policy, () => r);
          assert.ok(delay >= base / 2 && delay <= base, `delay ${delay} for base ${base}`);
        },
      ),
    );
  });
});
