// Keeps the error registry (src/core/errors.ts), its documentation
// (docs/errors.md) and the TesseraError class in agreement.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { AssertionError } from '../../src/core/assert.ts';
import {
  ERROR_CODES,
  GRPC_STATUS_NAMES,
  RETRYABLE_VALUES,
  TesseraError,
  isSafeToRetry,
  isTesseraError,
  type ErrorCode,
  type ErrorSpec,
} from '../../src/core/errors.ts';

const DOC_PATH = new URL('../../docs/errors.md', import.meta.url);
const SCREAMING_SNAKE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;

interface DocRow {
  readonly line: number;
  readonly code: string;
  readonly retryable: string;
  readonly httpStatus: number;
  readonly grpcStatus: string;
  readonly meaning: string;
}

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim());
}

/** Parses the table whose header is `| Code | Retryable | HTTP | gRPC | Meaning |`. */
function parseDocTable(markdown: string): DocRow[] {
  const lines = markdown.split('\n');
  const header = lines.findIndex(
    (l) =>
      l.trim().startsWith('|') &&
      cells(l)
        .map((c) => c.toLowerCase())
        .join(',') === 'code,retryable,http,grpc,meaning',
  );
  assert.notEqual(
    header,
    -1,
    'docs/errors.md has no | Code | Retryable | HTTP | gRPC | Meaning | table',
  );
  assert.match(lines[header + 1] ?? '', /^\s*\|(\s*:?-+:?\s*\|)+\s*$/, 'table separator row');
  const rows: DocRow[] = [];
  for (let i = header + 2; i < lines.length && lines[i]!.trim().startsWith('|'); i++) {
    const c = cells(lines[i]!);
    assert.equal(c.length, 5, `docs/errors.md:${i + 1}: expected 5 cells, got ${c.length}`);
    const [code, retryable, http, grpc, meaning] = c as [string, string, string, string, string];
    rows.push({
      line: i + 1,
      code: code.replace(/^`(.*)`$/, '$1'),
      retryable,
      httpStatus: Number(http),
      grpcStatus: grpc.replace(/^`(.*)`$/, '$1'),
      meaning,
    });
  }
  return rows;
}

const specs: [string, ErrorSpec][] = Object.entries(ERROR_CODES);
const docRows = parseDocTable(readFileSync(DOC_PATH, 'utf8'));

describe('error registry', () => {
  it('is not empty and holds the required codes', () => {
    const required = [
      'NOT_LEADER',
      'PROPOSAL_DROPPED',
      'OUTCOME_UNKNOWN',
      'TIMEOUT',
      'INVALID_ARGUMENT',
      'KEY_TOO_LARGE',
      'VALUE_TOO_LARGE',
      'REQUEST_TOO_LARGE',
      'CONDITION_FAILED',
      'NOT_FOUND',
      'ALREADY_EXISTS',
      'CONF_CHANGE_IN_PROGRESS',
      'UNAVAILABLE',
      'RESOURCE_EXHAUSTED',
      'CORRUPTION',
      'INTERNAL',
    ];
    for (const code of required) assert.ok(Object.hasOwn(ERROR_CODES, code), `missing ${code}`);
  });

  it('has unique SCREAMING_SNAKE codes equal to their keys', () => {
    const seen = new Set<string>();
    for (const [key, spec] of specs) {
      assert.equal(spec.code, key, `entry ${key} has code ${spec.code}`);
      assert.match(spec.code, SCREAMING_SNAKE, `${key} is not SCREAMING_SNAKE`);
      assert.ok(!seen.has(spec.code), `duplicate code ${spec.code}`);
      seen.add(spec.code);
    }
  });

  it('has a valid message, retry class, HTTP status and gRPC status for every code', () => {
    for (const [key, spec] of specs) {
      assert.ok(spec.message.trim().length > 0, `${key}: empty message`);
      assert.ok(RETRYABLE_VALUES.includes(spec.retryable), `${key}: retryable ${spec.retryable}`);
      assert.ok(
        Number.isInteger(spec.httpStatus) && spec.httpStatus >= 400 && spec.httpStatus <= 599,
        `${key}: httpStatus ${spec.httpStatus} is not an error status`,
      );
      assert.ok(
        (GRPC_STATUS_NAMES as readonly string[]).includes(spec.grpcStatus),
        `${key}: unknown gRPC status ${spec.grpcStatus}`,
      );
    }
  });

  it('keeps "not applied" apart from "outcome unknown"', () => {
    assert.equal(ERROR_CODES.NOT_LEADER.retryable, 'yes');
    assert.equal(ERROR_CODES.PROPOSAL_DROPPED.retryable, 'yes');
    assert.equal(ERROR_CODES.RESOURCE_EXHAUSTED.retryable, 'yes');
    assert.equal(ERROR_CODES.OUTCOME_UNKNOWN.retryable, 'with-idempotency-key');
    assert.equal(ERROR_CODES.CORRUPTION.retryable, 'no');
    assert.equal(ERROR_CODES.INTERNAL.retryable, 'no');
  });

  it('is frozen', () => {
    assert.ok(Object.isFrozen(ERROR_CODES));
    for (const [key, spec] of specs) assert.ok(Object.isFrozen(spec), `${key} is not frozen`);
  });
});

describe('docs/errors.md', () => {
  it('documents every registered code', () => {
    const documented = new Set(docRows.map((r) => r.code));
    const missing = specs.map(([k]) => k).filter((k) => !documented.has(k));
    assert.deepEqual(missing, [], `codes missing from docs/errors.md: ${missing.join(', ')}`);
  });

  it('documents no code that is not registered', () => {
    const extra = docRows.filter((r) => !Object.hasOwn(ERROR_CODES, r.code));
    assert.deepEqual(
      extra.map((r) => `${r.code} (line ${r.line})`),
      [],
      'docs/errors.md rows for codes not in ERROR_CODES',
    );
  });

  it('documents each code once', () => {
    const counts = new Map<string, number>();
    for (const r of docRows) counts.set(r.code, (counts.get(r.code) ?? 0) + 1);
    const dups = [...counts].filter(([, n]) => n > 1).map(([c]) => c);
    assert.deepEqual(dups, [], `codes documented more than once: ${dups.join(', ')}`);
  });

  it('agrees with the registry on retryable, HTTP and gRPC status', () => {
    for (const row of docRows) {
      if (!Object.hasOwn(ERROR_CODES, row.code)) continue;
      const spec: ErrorSpec = ERROR_CODES[row.code as ErrorCode];
      const where = `docs/errors.md:${row.line} (${row.code})`;
      assert.equal(row.retryable, spec.retryable, `${where}: retryable`);
      assert.equal(row.httpStatus, spec.httpStatus, `${where}: HTTP status`);
      assert.equal(row.grpcStatus, spec.grpcStatus, `${where}: gRPC status`);
      assert.ok(row.meaning.length > 0, `${where}: empty meaning`);
    }
  });

  it('parses a table that disagrees as disagreeing (the checker itself works)', () => {
    const md = [
      '| Code | Retryable | HTTP | gRPC | Meaning |',
      '| --- | --- | --- | --- | --- |',
      '| `NOT_LEADER` | no | 500 | INTERNAL | wrong on purpose |',
      '| `NO_SUCH_CODE` | yes | 503 | UNAVAILABLE | not registered |',
      '',
      '| not | the | table |',
    ].join('\n');
    const rows = parseDocTable(md);
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0], {
      line: 3,
      code: 'NOT_LEADER',
      retryable: 'no',
      httpStatus: 500,
      grpcStatus: 'INTERNAL',
      meaning: 'wrong on purpose',
    });
    assert.notEqual(rows[0]!.retryable, ERROR_CODES.NOT_LEADER.retryable);
    assert.ok(!Object.hasOwn(ERROR_CODES, rows[1]!.code));
  });
});

describe('TesseraError', () => {
  it('takes retryable and statuses from the registry, and the default message', () => {
    const e = new TesseraError('NOT_LEADER');
    assert.ok(e instanceof Error);
    assert.ok(e instanceof TesseraError);
    assert.equal(e.name, 'TesseraError');
    assert.equal(e.code, 'NOT_LEADER');
    assert.equal(e.message, ERROR_CODES.NOT_LEADER.message);
    assert.equal(e.retryable, 'yes');
    assert.equal(e.httpStatus, ERROR_CODES.NOT_LEADER.httpStatus);
    assert.equal(e.grpcStatus, ERROR_CODES.NOT_LEADER.grpcStatus);
    assert.equal(e.details, undefined);
    assert.ok(typeof e.stack === 'string' && e.stack.includes('TesseraError'));
  });

  it('carries a custom message and frozen details', () => {
    const details = { leaderHint: 3 };
    const e = new TesseraError('NOT_LEADER', 'node 2 is a follower', details);
    assert.equal(e.message, 'node 2 is a follower');
    assert.deepEqual(e.details, { leaderHint: 3 });
    assert.equal(e.details?.leaderHint, 3);
    assert.ok(Object.isFrozen(e.details));
    details.leaderHint = 4;
    assert.equal(e.details?.leaderHint, 3, 'details are copied');
  });

  it('matches the registry for every code', () => {
    for (const [key, spec] of specs) {
      const e = new TesseraError(key as ErrorCode);
      assert.equal(e.code, spec.code);
      assert.equal(e.message, spec.message);
      assert.equal(e.retryable, spec.retryable);
      assert.equal(e.httpStatus, spec.httpStatus);
      assert.equal(e.grpcStatus, spec.grpcStatus);
    }
  });

  it('rejects an unregistered code as a programmer error', () => {
    assert.throws(() => new TesseraError('NO_SUCH_CODE' as ErrorCode), AssertionError);
    assert.throws(() => new TesseraError('toString' as ErrorCode), AssertionError);
  });

  it('serialises to a stable wire form', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(new TesseraError('OUTCOME_UNKNOWN', 'timed out'))), {
      code: 'OUTCOME_UNKNOWN',
      message: 'timed out',
      retryable: 'with-idempotency-key',
    });
    assert.deepEqual(
      JSON.parse(JSON.stringify(new TesseraError('NOT_LEADER', undefined, { leaderHint: 5 }))),
      {
        code: 'NOT_LEADER',
        message: ERROR_CODES.NOT_LEADER.message,
        retryable: 'yes',
        details: { leaderHint: 5 },
      },
    );
  });

  it('is recognised by isTesseraError and isSafeToRetry', () => {
    assert.equal(isTesseraError(new TesseraError('INTERNAL')), true);
    assert.equal(isTesseraError(new Error('plain')), false);
    assert.equal(isTesseraError(new AssertionError('bug')), false);
    assert.equal(isTesseraError({ code: 'NOT_LEADER', retryable: 'yes' }), false);
    assert.equal(isTesseraError(undefined), false);
    assert.equal(isTesseraError('NOT_LEADER'), false);

    assert.equal(isSafeToRetry(new TesseraError('PROPOSAL_DROPPED')), true);
    assert.equal(isSafeToRetry(new TesseraError('OUTCOME_UNKNOWN')), false);
    assert.equal(isSafeToRetry(new TesseraError('CORRUPTION')), false);
    assert.equal(isSafeToRetry(new Error('plain')), false);
  });

  it('narrows with isTesseraError', () => {
    const caught: unknown = new TesseraError('RESOURCE_EXHAUSTED', undefined, { limit: 10 });
    if (!isTesseraError(caught)) assert.fail('expected a TesseraError');
    const code: ErrorCode = caught.code;
    assert.equal(code, 'RESOURCE_EXHAUSTED');
    assert.equal(caught.details?.limit, 10);
  });
});
