/**
 * Table schemas (Table Store model): a table's name, its primary key of
 * 1..4 typed columns (the first is the partition key) and its options
 * (versions kept per cell, time to live, how far a client-given version may
 * lie from the server's clock). Attribute columns are schemaless and not
 * declared here.
 *
 * Schemas arrive as untrusted JSON (API, CLI, the meta range); every entry
 * point validates with zod and turns all problems into one
 * `TesseraError('INVALID_SCHEMA')` whose message names each offending field,
 * e.g. `invalid table schema: primaryKey[1].type: must be one of string,
 * integer, binary`. A parsed schema is frozen.
 */
import { z } from 'zod';

import { TesseraError } from '../core/errors.ts';
import { PK_COLUMNS_MAX } from './key-codec.ts';
import type { PkColumnType, PkValue, PrimaryKey } from './types.ts';

/** Table and column names: a letter or `_`, then up to 254 letters, digits or `_`. */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;

/** The most versions a table may keep per cell. */
export const MAX_VERSIONS_LIMIT = 1000;
/** Versions kept per cell when the schema does not say. */
export const MAX_VERSIONS_DEFAULT = 1;
/** The longest time to live, in seconds (2^31 - 1, about 68 years). */
export const TTL_SECONDS_MAX = 2 ** 31 - 1;
/** The largest allowed distance of a client-given version from now, in seconds. */
export const MAX_VERSION_OFFSET_SECONDS_MAX = 2 ** 31 - 1;
/** The version offset when the schema does not say: one day, as Table Store. */
export const MAX_VERSION_OFFSET_SECONDS_DEFAULT = 86_400;

/** One primary-key column. */
export interface PkColumnSchema {
  readonly name: string;
  readonly type: PkColumnType;
  /**
   * The server assigns this column's value on insert (increasing within a
   * partition). Only an integer column other than the first may have it,
   * and at most one per table. Absent means false.
   */
  readonly autoIncrement?: true;
}

/** The options of a table: the only part of a schema {@link alterTable} may change. */
export interface TableOptions {
  /** Versions kept per attribute cell, 1..{@link MAX_VERSIONS_LIMIT}; older ones are dropped. */
  readonly maxVersions: number;
  /** Seconds a version lives after its version timestamp, or null: forever. */
  readonly ttlSeconds: number | null;
  /** A write's explicit version must lie within this many seconds of the server's clock. */
  readonly maxVersionOffsetSeconds: number;
}

/** A validated, frozen table schema. */
export interface TableSchema extends TableOptions {
  readonly name: string;
  /** 1..PK_COLUMNS_MAX columns in key order; the first is the partition key. */
  readonly primaryKey: readonly PkColumnSchema[];
}

const PK_COLUMN_TYPES = ['string', 'integer', 'binary'] as const satisfies readonly PkColumnType[];

const nameSchema = z
  .string()
  .regex(NAME_PATTERN, 'must be a letter or _ then up to 254 letters, digits or _');

const pkColumnSchema = z
  .object({
    name: nameSchema,
    type: z.enum(PK_COLUMN_TYPES),
    // false is accepted and dropped: it means the same as absent.
    autoIncrement: z.boolean().optional(),
  })
  .strict();

const maxVersionsSchema = z.number().int().min(1).max(MAX_VERSIONS_LIMIT);
const ttlSecondsSchema = z.number().int().min(1).max(TTL_SECONDS_MAX).nullable();
const maxVersionOffsetSecondsSchema = z.number().int().min(1).max(MAX_VERSION_OFFSET_SECONDS_MAX);

const tableSchemaSchema = z
  .object({
    name: nameSchema,
    primaryKey: z.array(pkColumnSchema).min(1).max(PK_COLUMNS_MAX),
    maxVersions: maxVersionsSchema.default(MAX_VERSIONS_DEFAULT),
    ttlSeconds: ttlSecondsSchema.default(null),
    maxVersionOffsetSeconds: maxVersionOffsetSecondsSchema.default(
      MAX_VERSION_OFFSET_SECONDS_DEFAULT,
    ),
  })
  .strict()
  .superRefine((schema, ctx) => {
    const firstIndex = new Map<string, number>();
    let autoIncrementCount = 0;
    schema.primaryKey.forEach((column, i) => {
      const first = firstIndex.get(column.name);
      if (first === undefined) firstIndex.set(column.name, i);
      else {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['primaryKey', i, 'name'],
          message: `duplicates primaryKey[${first}].name "${column.name}"`,
        });
      }
      if (column.autoIncrement !== true) return;
      autoIncrementCount++;
      const path = ['primaryKey', i, 'autoIncrement'];
      if (i === 0) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path,
          message: 'the first column is the partition key and cannot be autoIncrement',
        });
      }
      if (column.type !== 'integer') {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path,
          message: `only an integer column can be autoIncrement, this one is ${column.type}`,
        });
      }
    });
    if (autoIncrementCount > 1) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['primaryKey'],
        message: `at most one column can be autoIncrement, found ${autoIncrementCount}`,
      });
    }
  });

const optionsChangeSchema = z
  .object({
    maxVersions: maxVersionsSchema.optional(),
    ttlSeconds: ttlSecondsSchema.optional(),
    maxVersionOffsetSeconds: maxVersionOffsetSecondsSchema.optional(),
  })
  .strict();

function entries(n: number | bigint): string {
  return n === 1 ? 'entry' : 'entries';
}

/** Short, uniform messages for the issues our schemas can raise. */
const errorMap: z.ZodErrorMap = (issue, ctx) => {
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      if (issue.received === 'undefined') return { message: 'is required' };
      if (issue.expected === 'integer') return { message: 'must be an integer' };
      return { message: `must be ${issue.expected}, got ${issue.received}` };
    case z.ZodIssueCode.too_small:
      return issue.type === 'array'
        ? { message: `must have at least ${issue.minimum} ${entries(issue.minimum)}` }
        : { message: `must be at least ${issue.minimum}` };
    case z.ZodIssueCode.too_big:
      return issue.type === 'array'
        ? { message: `must have at most ${issue.maximum} ${entries(issue.maximum)}` }
        : { message: `must be at most ${issue.maximum}` };
    case z.ZodIssueCode.invalid_enum_value:
      return { message: `must be one of ${issue.options.join(', ')}` };
    case z.ZodIssueCode.unrecognized_keys:
      return { message: `unknown field(s): ${issue.keys.join(', ')}` };
    default:
      return { message: ctx.defaultError };
  }
};

/** `['primaryKey', 1, 'name']` -> `primaryKey[1].name`. */
function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out || '(root)';
}

function schemaError(what: string, error: z.ZodError): TesseraError {
  const problems = error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
  return new TesseraError('INVALID_SCHEMA', `${what}: ${problems.join('; ')}`);
}

/**
 * Validates untrusted input as a table schema, fills in defaults
 * (maxVersions 1, ttlSeconds null, maxVersionOffsetSeconds 86400) and
 * returns a fresh frozen schema holding only the known fields.
 *
 * @throws TesseraError INVALID_SCHEMA listing every problem with its field
 *   path: a bad or duplicate name, 0 or more than 4 key columns, an unknown
 *   column type, a misplaced autoIncrement, an option out of range, an
 *   unknown field.
 */
export function parseTableSchema(input: unknown): TableSchema {
  const result = tableSchemaSchema.safeParse(input, { errorMap });
  if (!result.success) throw schemaError('invalid table schema', result.error);
  const s = result.data;
  return Object.freeze({
    name: s.name,
    primaryKey: Object.freeze(
      s.primaryKey.map((c) =>
        Object.freeze(
          c.autoIncrement === true
            ? { name: c.name, type: c.type, autoIncrement: true as const }
            : { name: c.name, type: c.type },
        ),
      ),
    ),
    maxVersions: s.maxVersions,
    ttlSeconds: s.ttlSeconds,
    maxVersionOffsetSeconds: s.maxVersionOffsetSeconds,
  });
}

/**
 * Applies a change of options to a schema and returns the new frozen schema
 * (`schema` is not modified). `changes` is untrusted input holding any of
 * maxVersions, ttlSeconds (null: forever) and maxVersionOffsetSeconds;
 * absent fields keep their value.
 *
 * @throws TesseraError INVALID_SCHEMA if `changes` holds `name` or
 *   `primaryKey` (a table is never renamed and its key never changes), an
 *   unknown field, or an option out of range.
 */
export function alterTable(schema: TableSchema, changes: unknown): TableSchema {
  if (typeof changes === 'object' && changes !== null) {
    const fixed: string[] = [];
    if (Object.hasOwn(changes, 'name')) fixed.push('name: a table cannot be renamed');
    if (Object.hasOwn(changes, 'primaryKey')) {
      fixed.push('primaryKey: the primary key of a table cannot be changed');
    }
    if (fixed.length > 0) {
      throw new TesseraError('INVALID_SCHEMA', `invalid table change: ${fixed.join('; ')}`);
    }
  }
  const result = optionsChangeSchema.safeParse(changes, { errorMap });
  if (!result.success) throw schemaError('invalid table change', result.error);
  const c = result.data;
  return Object.freeze({
    name: schema.name,
    primaryKey: schema.primaryKey,
    maxVersions: c.maxVersions ?? schema.maxVersions,
    ttlSeconds: c.ttlSeconds === undefined ? schema.ttlSeconds : c.ttlSeconds,
    maxVersionOffsetSeconds: c.maxVersionOffsetSeconds ?? schema.maxVersionOffsetSeconds,
  });
}

/** The primary-key column types of `schema`, in key order, as the key codec takes them. */
export function pkColumnTypes(schema: TableSchema): PkColumnType[] {
  return schema.primaryKey.map((c) => c.type);
}

/**
 * The values of a named primary key in key order, as the key codec takes
 * them. Value types are checked by the codec, not here.
 *
 * @throws TesseraError INVALID_ARGUMENT unless `pk` names exactly the
 *   schema's key columns, in order.
 */
export function pkValuesOf(schema: TableSchema, pk: PrimaryKey): PkValue[] {
  const names = schema.primaryKey.map((c) => c.name);
  const given = pk.map(([name]) => name);
  if (given.length !== names.length || given.some((n, i) => n !== names[i])) {
    throw new TesseraError(
      'INVALID_ARGUMENT',
      `primary key of table ${schema.name} must name columns [${names.join(', ')}] in order, got [${given.join(', ')}]`,
    );
  }
  return pk.map(([, value]) => value);
}
