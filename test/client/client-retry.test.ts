/**
 * The client's retry loop against a scripted fetch (no server): which
 * failures are retried, that every attempt of one write carries the same
 * session and sequence number, that "maybe applied" is never reported as
 * "not applied", that concurrent writes get sessions of their own, and
 * that an aborted call rejects with its signal's reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TesseraClient } from '../../src/client/client.ts';
import { TesseraError } from '../../src/core/errors.ts';
import { backoffDelayMs, mayRetry } from '../../src/client/retry.ts';
import { DEADLINE_MS_MAX } from '../../src/client/options.ts';
import { json, scripted, type Seen } from '../support/scripted-fetch.ts';

const refused = (): Promise<Response> =>
  Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }));

/** Never answers; rejects when the attempt is aborted, as fetch does. */
const hang = (_s: Seen, signal: AbortSignal): Promise<Response> =>
  new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

const fast = { initialMs: 1, maxMs: 2 };

describe('TesseraClient retries', () => {
  it('follows a NOT_LEADER hint at once and caches the leader', async () => {
    const { fetch, seen } = scripted(async (s) =>
      s.url.startsWith('http://a:1')
        ? json(421, {
            code: 'NOT_LEADER',
            message: 'no',
            retryable: 'yes',
            leaderHint: { id: 2, http: 'b:2' },
          })
        : json(200, { key: 'k', ok: true }),
    );
    const c = new TesseraClient({ endpoints: ['a:1'], fetch, backoff: fast });
    await c.put('k', 'v');
    await c.put('k', 'w');
    assert.deepEqual(
      seen.map((s) => s.url),
      ['http://a:1/v1/kv/k', 'http://b:2/v1/kv/k', 'http://b:2/v1/kv/k'],
    );
    assert.equal(c.leaderEndpoint('k'), 'http://b:2');
    // Both attempts of the first write carry one session and sequence number.
    assert.equal(seen[0]!.client, String(c.clientId));
    assert.deepEqual([seen[0]!.seq, seen[1]!.seq, seen[2]!.seq], ['1', '1', '2']);
  });

  it('a write whose attempts time out fails OUTCOME_UNKNOWN, every retry with the same seq', async () => {
    const { fetch, seen } = scripted(hang);
    const c = new TesseraClient({
      endpoints: ['a:1', 'b:2'],
      fetch,
      retries: 2,
      timeoutMs: 20,
      backoff: fast,
    });
    await assert.rejects(
      c.put('k', 'v'),
      (e: unknown) => e instanceof TesseraError && e.code === 'OUTCOME_UNKNOWN',
    );
    assert.equal(seen.length, 3);
    assert.ok(seen.every((s) => s.seq === '1' && s.client === String(c.clientId)));
  });

  it('stays OUTCOME_UNKNOWN when a lost attempt is followed by refusals', async () => {
    let n = 0;
    const { fetch, seen } = scripted((s, signal) => (n++ === 0 ? hang(s, signal) : refused()));
    const c = new TesseraClient({
      endpoints: ['a:1', 'b:2'],
      fetch,
      retries: 3,
      timeoutMs: 20,
      backoff: fast,
    });
    await assert.rejects(c.cas('k', null, 'v'), (e: unknown) => {
      assert.ok(e instanceof TesseraError);
      assert.equal(e.code, 'OUTCOME_UNKNOWN');
      assert.equal(e.details?.lastCode, 'UNAVAILABLE');
      return true;
    });
    assert.equal(seen.length, 4);
  });

  it('a write refused on every attempt is definitely not applied (UNAVAILABLE)', async () => {
    const { fetch, seen } = scripted(refused);
    const c = new TesseraClient({ endpoints: ['a:1', 'b:2'], fetch, retries: 4, backoff: fast });
    await assert.rejects(
      c.delete('k'),
      (e: unknown) =>
        e instanceof TesseraError && e.code === 'UNAVAILABLE' && e.retryable === 'yes',
    );
    assert.equal(seen.length, 5);
    // It moved between endpoints.
    assert.deepEqual(new Set(seen.map((s) => new URL(s.url).host)), new Set(['a:1', 'b:2']));
  });

  it('retries OUTCOME_UNKNOWN, PROPOSAL_DROPPED and RESOURCE_EXHAUSTED answers', async () => {
    const answers = [
      json(504, { code: 'OUTCOME_UNKNOWN', message: 'x', retryable: 'with-idempotency-key' }),
      json(503, { code: 'PROPOSAL_DROPPED', message: 'x', retryable: 'yes' }),
      json(429, { code: 'RESOURCE_EXHAUSTED', message: 'x', retryable: 'yes' }),
      json(200, { key: 'k', swapped: true }),
    ];
    const { fetch, seen } = scripted(async () => answers.shift()!);
    const c = new TesseraClient({ endpoints: ['a:1'], fetch, backoff: fast });
    assert.equal(await c.cas('k', 'a', 'b'), true);
    assert.equal(seen.length, 4);
    assert.ok(seen.every((s) => s.seq === '1'));
  });

  for (const code of [
    'INVALID_ARGUMENT',
    'KEY_TOO_LARGE',
    'VALUE_TOO_LARGE',
    'CONDITION_FAILED',
  ] as const) {
    it(`never retries ${code}`, async () => {
      const { fetch, seen } = scripted(async () =>
        json(400, { code, message: 'x', retryable: 'no' }),
      );
      const c = new TesseraClient({ endpoints: ['a:1', 'b:2'], fetch, backoff: fast });
      await assert.rejects(
        c.put('k', 'v'),
        (e: unknown) => e instanceof TesseraError && e.code === code,
      );
      await assert.rejects(
        c.get('k'),
        (e: unknown) => e instanceof TesseraError && e.code === code,
      );
      assert.equal(seen.length, 2);
    });
  }

  it('reads retry lost attempts freely and fail TIMEOUT when all time out', async () => {
    const { fetch, seen } = scripted(hang);
    const c = new TesseraClient({
      endpoints: ['a:1'],
      fetch,
      retries: 2,
      timeoutMs: 10,
      backoff: fast,
    });
    await assert.rejects(
      c.get('k'),
      (e: unknown) => e instanceof TesseraError && e.code === 'TIMEOUT',
    );
    assert.equal(seen.length, 3);
  });

  it('stops at the call deadline', async () => {
    const { fetch } = scripted(hang);
    const c = new TesseraClient({
      endpoints: ['a:1'],
      fetch,
      retries: 100,
      timeoutMs: 1_000,
      backoff: fast,
    });
    const t0 = performance.now();
    await assert.rejects(
      c.put('k', 'v', { deadlineMs: 60 }),
      (e: unknown) => e instanceof TesseraError && e.code === 'OUTCOME_UNKNOWN',
    );
    assert.ok(performance.now() - t0 < 1_000);
  });

  it('refuses a call deadline beyond the session idle window allows', async () => {
    const { fetch, seen } = scripted(async () => json(200, { key: 'k', ok: true }));
    const isInvalid = (e: unknown): boolean =>
      e instanceof TesseraError && e.code === 'INVALID_ARGUMENT';
    assert.throws(
      () => new TesseraClient({ endpoints: ['a:1'], fetch, deadlineMs: DEADLINE_MS_MAX + 1 }),
      isInvalid,
    );
    const c = new TesseraClient({ endpoints: ['a:1'], fetch, deadlineMs: DEADLINE_MS_MAX });
    await assert.rejects(c.put('k', 'v', { deadlineMs: DEADLINE_MS_MAX + 1 }), isInvalid);
    assert.equal(seen.length, 0);
  });

  it('gives concurrent writes sessions of their own and numbers each session', async () => {
    const { fetch, seen } = scripted(async () => json(200, { key: 'k', ok: true }));
    const c = new TesseraClient({ endpoints: ['a:1'], fetch, concurrentWritesMax: 4 });
    await Promise.all(Array.from({ length: 4 }, (_, i) => c.put(`k${i}`, 'v')));
    assert.equal(new Set(seen.map((s) => s.client)).size, 4);
    await Promise.all(Array.from({ length: 12 }, (_, i) => c.put(`k${i}`, 'v')));
    // 4 sessions; each numbers its writes 1, 2, ... without gaps or repeats.
    const bySession = new Map<string, number[]>();
    for (const s of seen)
      bySession.set(s.client!, [...(bySession.get(s.client!) ?? []), Number(s.seq)]);
    assert.equal(bySession.size, 4);
    for (const seqs of bySession.values())
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i + 1),
      );
  });

  it('an aborted call rejects with the signal reason, or an AbortError', async () => {
    const { fetch, seen } = scripted(hang);
    const c = new TesseraClient({ endpoints: ['a:1'], fetch });
    const reason = new Error('user gave up');
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(reason), 20);
    await assert.rejects(c.put('k', 'v', { signal: ctl.signal }), (e: unknown) => e === reason);
    const ctl2 = new AbortController();
    setTimeout(() => ctl2.abort(), 20);
    await assert.rejects(c.get('k', { signal: ctl2.signal }), { name: 'AbortError' });
    const before = seen.length;
    await assert.rejects(
      c.cas('k', null, 'x', { signal: AbortSignal.abort(reason) }),
      (e: unknown) => e === reason,
    );
    assert.equal(seen.length, before, 'an already aborted call sends nothing');
  });

  it('retry policy and backoff are bounded', () => {
    const p = { initialMs: 10, maxMs: 100, multiplier: 2 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 99].map((r) => backoffDelayMs(r, p, () => 0.999999)).map(Math.round),
      [10, 20, 40, 80, 100, 100],
    );
    assert.equal(
      backoffDelayMs(1, p, () => 0),
      5,
    );
    assert.equal(mayRetry(new TesseraError('OUTCOME_UNKNOWN'), true), true);
    assert.equal(mayRetry(new TesseraError('OUTCOME_UNKNOWN'), false), false);
    assert.equal(mayRetry(new TesseraError('NOT_LEADER'), false), true);
    assert.equal(mayRetry(new TesseraError('CONDITION_FAILED'), true), false);
  });
});
