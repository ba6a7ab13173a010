/**
 * Conditions of conditional writes (Table Store model): an expectation on the
 * row's existence plus an optional column condition, a tree of relations on
 * columns' latest visible values combined with AND, OR and NOT. The row store
 * evaluates a condition before it writes anything; a condition that does not
 * hold throws CONDITION_FAILED and the write changes nothing.
 *
 * Comparison rules (see {@link compareAttributeValues}):
 * - values of the same type compare naturally: integers and doubles
 *   numerically, strings by Unicode code point (the order of their UTF-8
 *   bytes), binaries as unsigned bytes (a prefix first), false < true;
 * - values of different types (an integer and a double included) are never
 *   equal and never ordered: `=` is false, `!=` is true, and `>`, `>=`, `<`,
 *   `<=` are false;
 * - a relation on a column without a visible value yields its
 *   `passIfMissing`, true by default (Table Store's pass_if_missing).
 *
 * The JSON form (wire and CLI) is parsed by {@link parseConditionJson}.
 */
import { z } from 'zod';

import { assertNever } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import { INT64_MAX, INT64_MIN } from './cell-codec.ts';
import type { AttributeValue } from './types.ts';

/** What the row's existence must be for the write to proceed. */
export type RowExistence = 'IGNORE' | 'EXPECT_EXIST' | 'EXPECT_NOT_EXIST';

/** A relation between a column's latest visible value and a constant. */
export type RelationOp = '=' | '!=' | '>' | '>=' | '<' | '<=';

/** The relation operators, for validation. */
export const RELATION_OPS: readonly RelationOp[] = ['=', '!=', '>', '>=', '<', '<='];

/** A relation on one column: `latest(column) op value`. */
export interface ColumnRelation {
  readonly kind: 'relation';
  readonly column: string;
  readonly op: RelationOp;
  readonly value: AttributeValue;
  /** Result when the column has no visible value; default {@link PASS_IF_MISSING_DEFAULT}. */
  readonly passIfMissing?: boolean;
}

/** A condition on a row's columns. */
export type ColumnCondition =
  | ColumnRelation
  | { readonly kind: 'and'; readonly terms: readonly ColumnCondition[] }
  | { readonly kind: 'or'; readonly terms: readonly ColumnCondition[] }
  | { readonly kind: 'not'; readonly term: ColumnCondition };

/** The condition of a conditional write. */
export interface RowCondition {
  readonly rowExistence: RowExistence;
  /** Checked after the existence expectation; absent: no column condition. */
  readonly columnCondition?: ColumnCondition;
}

/** Default of {@link ColumnRelation.passIfMissing}, as in Table Store. */
export const PASS_IF_MISSING_DEFAULT = true;
/** Deepest nesting of a column condition; a lone relation has depth 1. */
export const CONDITION_DEPTH_MAX = 8;
/** Most nodes (relations, AND, OR, NOT) in one column condition. */
export const CONDITION_TERMS_MAX = 64;

/** What a condition can see of the row it guards. */
export interface ConditionRow {
  /** Whether the row has at least one visible cell. */
  readonly exists: boolean;
  /** The latest visible value of `column`, or undefined if it has none. */
  latest(column: string): AttributeValue | undefined;
}

function typeOf(v: AttributeValue): string {
  return v instanceof Uint8Array ? 'binary' : typeof v;
}

/** Compares strings in code point order (= UTF-8 byte order, unlike `<` on UTF-16 units). */
function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate encodes a code point above the whole BMP, including U+E000..U+FFFF.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function compareBinaries(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Orders two attribute values of the same type: negative, zero or positive.
 * Returns null for values of different types, which are incomparable.
 */
export function compareAttributeValues(a: AttributeValue, b: AttributeValue): number | null {
  if (typeOf(a) !== typeOf(b)) return null;
  if (typeof a === 'string') return compareStrings(a, b as string);
  if (typeof a === 'bigint') return a < (b as bigint) ? -1 : a > (b as bigint) ? 1 : 0;
  if (typeof a === 'number') return a < (b as number) ? -1 : a > (b as number) ? 1 : 0;
  if (typeof a === 'boolean') return Number(a) - Number(b as boolean);
  return compareBinaries(a, b as Uint8Array);
}

function holds(op: RelationOp, actual: AttributeValue, expected: AttributeValue): boolean {
  const c = compareAttributeValues(actual, expected);
  if (c === null) return op === '!=';
  switch (op) {
    case '=':
      return c === 0;
    case '!=':
      return c !== 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    default:
      return assertNever(op, 'relation');
  }
}

/** Evaluates a (validated) column condition on the row's latest visible values. */
export function evaluateColumnCondition(
  condition: ColumnCondition,
  latest: (column: string) => AttributeValue | undefined,
): boolean {
  switch (condition.kind) {
    case 'relation': {
      const actual = latest(condition.column);
      if (actual === undefined) return condition.passIfMissing ?? PASS_IF_MISSING_DEFAULT;
      return holds(condition.op, actual, condition.value);
    }
    case 'and':
      return condition.terms.every((t) => evaluateColumnCondition(t, latest));
    case 'or':
      return condition.terms.some((t) => evaluateColumnCondition(t, latest));
    case 'not':
      return !evaluateColumnCondition(condition.term, latest);
    default:
      return assertNever(condition, 'column condition');
  }
}

/**
 * Throws CONDITION_FAILED unless `condition` holds on `row`: first the
 * existence expectation, then the column condition.
 */
export function checkRowCondition(condition: RowCondition, row: ConditionRow): void {
  if (condition.rowExistence === 'EXPECT_EXIST' && !row.exists) {
    throw new TesseraError('CONDITION_FAILED', 'condition failed: the row does not exist');
  }
  if (condition.rowExistence === 'EXPECT_NOT_EXIST' && row.exists) {
    throw new TesseraError('CONDITION_FAILED', 'condition failed: the row exists');
  }
  const cc = condition.columnCondition;
  if (cc !== undefined && !evaluateColumnCondition(cc, (c) => row.latest(c))) {
    throw new TesseraError('CONDITION_FAILED', 'condition failed: the column condition is false');
  }
}

function invalid(message: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', `invalid condition: ${message}`);
}

/** Throws INVALID_ARGUMENT unless `value` is a storable attribute value. */
export function checkAttributeValue(value: AttributeValue, what: string): void {
  if (typeof value === 'bigint' && (value < INT64_MIN || value > INT64_MAX)) {
    throw new TesseraError('INVALID_ARGUMENT', `${what}: integer ${value} is outside int64`);
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new TesseraError('INVALID_ARGUMENT', `${what}: a double must be finite, got ${value}`);
  }
}

/**
 * Throws INVALID_ARGUMENT unless the column condition respects
 * {@link CONDITION_DEPTH_MAX} and {@link CONDITION_TERMS_MAX}, every AND/OR
 * has at least one term, and every relation's value is storable.
 */
export function checkColumnCondition(condition: ColumnCondition): void {
  let nodes = 0;
  const walk = (c: ColumnCondition, depth: number): void => {
    if (depth > CONDITION_DEPTH_MAX) {
      throw invalid(`nested deeper than ${CONDITION_DEPTH_MAX} levels`);
    }
    nodes += 1;
    if (nodes > CONDITION_TERMS_MAX) throw invalid(`more than ${CONDITION_TERMS_MAX} terms`);
    switch (c.kind) {
      case 'relation':
        if (!RELATION_OPS.includes(c.op)) throw invalid(`unknown operator ${String(c.op)}`);
        checkAttributeValue(c.value, `condition on column ${JSON.stringify(c.column)}`);
        return;
      case 'and':
      case 'or':
        if (c.terms.length === 0) throw invalid(`${c.kind.toUpperCase()} without terms`);
        for (const t of c.terms) walk(t, depth + 1);
        return;
      case 'not':
        walk(c.term, depth + 1);
        return;
      default:
        assertNever(c, 'column condition');
    }
  };
  walk(condition, 1);
}

// ---------------------------------------------------------------------------
// JSON form.
// ---------------------------------------------------------------------------

/**
 * A JSON attribute value: a string, a boolean, an integral number (an
 * integer, safe range only), another number (a double), or one of
 * `{"$int":"<decimal>"}`, `{"$double":<number>}`, `{"$binary":"<base64>"}`.
 */
export type JsonAttributeValue =
  string | boolean | number | { $int: string } | { $double: number } | { $binary: string };

/** The JSON form of a column condition. */
export type JsonColumnCondition =
  | { column: string; op: RelationOp; value: JsonAttributeValue; passIfMissing?: boolean }
  | { and: JsonColumnCondition[] }
  | { or: JsonColumnCondition[] }
  | { not: JsonColumnCondition };

/** The JSON form of a row condition; `expect` defaults to "ignore". */
export interface JsonRowCondition {
  expect?: 'ignore' | 'exist' | 'not_exist';
  if?: JsonColumnCondition;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DECIMAL = /^-?(0|[1-9][0-9]*)$/;

const jsonValueSchema = z.union([
  z.string(),
  z.boolean(),
  z.number().finite(),
  z.object({ $int: z.string().regex(DECIMAL, 'a decimal integer') }).strict(),
  z.object({ $double: z.number().finite() }).strict(),
  z.object({ $binary: z.string().regex(BASE64, 'base64') }).strict(),
]);

const relationSchema = z
  .object({
    column: z.string().min(1),
    op: z.enum(['=', '!=', '>', '>=', '<', '<=']),
    value: jsonValueSchema,
    passIfMissing: z.boolean().optional(),
  })
  .strict();

const columnConditionSchema: z.ZodType<JsonColumnCondition> = z.lazy(() =>
  z.union([
    relationSchema,
    z.object({ and: z.array(columnConditionSchema).min(1) }).strict(),
    z.object({ or: z.array(columnConditionSchema).min(1) }).strict(),
    z.object({ not: columnConditionSchema }).strict(),
  ]),
);

const rowConditionSchema = z
  .object({
    expect: z.enum(['ignore', 'exist', 'not_exist']).optional(),
    if: columnConditionSchema.optional(),
  })
  .strict();

/** True if `json` nests objects and arrays deeper than `max` (stops early). */
function nestsDeeperThan(json: unknown, max: number): boolean {
  if (typeof json !== 'object' || json === null) return false;
  if (max === 0) return true;
  const children: unknown[] = Array.isArray(json) ? json : Object.values(json);
  return children.some((c) => nestsDeeperThan(c, max - 1));
}

/** JSON nesting levels per condition level: `{"and":[ ... ]}` is an object and an array. */
const JSON_LEVELS_PER_CONDITION_LEVEL = 2;
/** The row condition object and a relation's value object. */
const JSON_LEVELS_EXTRA = 2;

function fromJsonValue(v: z.infer<typeof jsonValueSchema>): AttributeValue {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return v;
    if (!Number.isSafeInteger(v)) {
      throw invalid(`integer ${v} is not exact in JSON; write it as {"$int":"..."}`);
    }
    return BigInt(v);
  }
  if ('$int' in v) {
    const n = BigInt(v.$int);
    if (n < INT64_MIN || n > INT64_MAX) throw invalid(`integer ${v.$int} is outside int64`);
    return n;
  }
  if ('$double' in v) return v.$double;
  return new Uint8Array(Buffer.from(v.$binary, 'base64'));
}

function fromJsonCondition(c: JsonColumnCondition): ColumnCondition {
  if ('and' in c) return { kind: 'and', terms: c.and.map(fromJsonCondition) };
  if ('or' in c) return { kind: 'or', terms: c.or.map(fromJsonCondition) };
  if ('not' in c) return { kind: 'not', term: fromJsonCondition(c.not) };
  const relation: ColumnRelation = {
    kind: 'relation',
    column: c.column,
    op: c.op,
    value: fromJsonValue(c.value),
  };
  return c.passIfMissing === undefined ? relation : { ...relation, passIfMissing: c.passIfMissing };
}

const EXPECT_FROM_JSON = {
  ignore: 'IGNORE',
  exist: 'EXPECT_EXIST',
  not_exist: 'EXPECT_NOT_EXIST',
} as const satisfies Record<string, RowExistence>;

/**
 * Parses and validates the JSON form of a row condition, e.g.
 * `{"expect":"exist","if":{"and":[{"column":"age","op":">","value":30},{"not":{...}}]}}`.
 * Anything malformed, or beyond {@link CONDITION_DEPTH_MAX} or
 * {@link CONDITION_TERMS_MAX}, throws INVALID_ARGUMENT naming the problem.
 */
export function parseConditionJson(json: unknown): RowCondition {
  // Bound the nesting before the recursive schema walks it.
  const jsonDepthMax = CONDITION_DEPTH_MAX * JSON_LEVELS_PER_CONDITION_LEVEL + JSON_LEVELS_EXTRA;
  if (nestsDeeperThan(json, jsonDepthMax)) {
    throw invalid(`nested deeper than ${CONDITION_DEPTH_MAX} levels`);
  }
  const parsed = rowConditionSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length === 0 ? '(root)' : issue.path.join('.');
    throw invalid(`${path}: ${issue.message}`);
  }
  const rowExistence = EXPECT_FROM_JSON[parsed.data.expect ?? 'ignore'];
  if (parsed.data.if === undefined) return { rowExistence };
  const columnCondition = fromJsonCondition(parsed.data.if);
  checkColumnCondition(columnCondition);
  return { rowExistence, columnCondition };
}

function toJsonValue(v: AttributeValue): JsonAttributeValue {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : { $int: v.toString() };
  }
  if (typeof v === 'number') return Number.isInteger(v) ? { $double: v } : v;
  return { $binary: Buffer.from(v).toString('base64') };
}

function toJsonCondition(c: ColumnCondition): JsonColumnCondition {
  switch (c.kind) {
    case 'relation': {
      const out = { column: c.column, op: c.op, value: toJsonValue(c.value) };
      return c.passIfMissing === undefined ? out : { ...out, passIfMissing: c.passIfMissing };
    }
    case 'and':
      return { and: c.terms.map(toJsonCondition) };
    case 'or':
      return { or: c.terms.map(toJsonCondition) };
    case 'not':
      return { not: toJsonCondition(c.term) };
    default:
      return assertNever(c, 'column condition');
  }
}

const EXPECT_TO_JSON = {
  IGNORE: 'ignore',
  EXPECT_EXIST: 'exist',
  EXPECT_NOT_EXIST: 'not_exist',
} as const satisfies Record<RowExistence, string>;

/** The JSON form of a condition; {@link parseConditionJson} reads it back to an equal condition. */
export function conditionToJson(condition: RowCondition): JsonRowCondition {
  const expect = EXPECT_TO_JSON[condition.rowExistence];
  const cc = condition.columnCondition;
  return cc === undefined ? { expect } : { expect, if: toJsonCondition(cc) };
}
