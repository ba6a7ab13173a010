import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { nodeId } from '../../src/core/ids.ts';
import { NodeLiveness } from '../../src/server/node-liveness.ts';

const n = nodeId;

function liveness(livenessTimeoutTicks = 3, peersMax = 8): NodeLiveness {
  return new NodeLiveness({ livenessTimeoutTicks, peersMax });
}

function ticks(l: NodeLiveness, count: number): void {
  for (let i = 0; i < count; i++) l.tick();
}

describe('NodeLiveness', () => {
  it('a peer never heard from is not live', () => {
    const l = liveness();
    assert.equal(l.isLive(n(2)), false);
    ticks(l, 10);
    assert.deepEqual(l.newlyDown(), [], 'unknown peers are never reported');
  });

  it('a peer is live until livenessTimeoutTicks pass without anything heard', () => {
    const l = liveness(3);
    l.heard(n(2));
    ticks(l, 2);
    assert.equal(l.isLive(n(2)), true);
    assert.deepEqual(l.newlyDown(), []);
    l.tick();
    assert.equal(l.isLive(n(2)), false);
    assert.deepEqual(l.newlyDown(), [n(2)]);
  });

  it('hearing from a peer restarts its timeout', () => {
    const l = liveness(3);
    l.heard(n(2));
    for (let i = 0; i < 10; i++) {
      ticks(l, 2);
      l.heard(n(2));
    }
    assert.equal(l.isLive(n(2)), true);
    assert.deepEqual(l.newlyDown(), []);
  });

  it('newlyDown reports each crossing once, in order, and again after a recovery', () => {
    const l = liveness(2);
    l.heard(n(3));
    l.tick();
    l.heard(n(2));
    l.tick();
    assert.deepEqual(l.newlyDown(), [n(3)]);
    l.tick();
    assert.deepEqual(l.newlyDown(), [n(2)]);
    ticks(l, 5);
    assert.deepEqual(l.newlyDown(), [], 'a down peer is not reported again while silent');
    l.heard(n(3));
    assert.equal(l.isLive(n(3)), true);
    ticks(l, 2);
    assert.deepEqual(l.newlyDown(), [n(3)]);
  });

  it('a peer heard from again before newlyDown() is not reported', () => {
    const l = liveness(1);
    l.heard(n(2));
    l.tick();
    l.heard(n(2));
    assert.deepEqual(l.newlyDown(), []);
  });

  it('forget drops a peer', () => {
    const l = liveness(1);
    l.heard(n(2));
    l.tick();
    l.forget(n(2));
    assert.deepEqual(l.newlyDown(), []);
    assert.equal(l.isLive(n(2)), false);
  });

  it('enforces its limits', () => {
    assert.throws(() => liveness(0));
    const l = liveness(3, 2);
    l.heard(n(1));
    l.heard(n(2));
    l.heard(n(2));
    assert.throws(() => l.heard(n(3)), /more than 2 peers/);
  });
});
