/**
 * The values of the table data model (Table Store): primary-key columns and
 * attribute columns, and their types. Integers are 64-bit signed and are
 * carried as `bigint` everywhere (JavaScript numbers lose precision above
 * 2^53); doubles are `number`.
 */

/** Types a primary-key column may have. */
export type PkColumnType = 'string' | 'integer' | 'binary';

/** Types an attribute column's cell may have (attributes are schemaless). */
export type AttributeType = 'string' | 'integer' | 'double' | 'boolean' | 'binary';

/** The smallest and largest primary-key values: bounds of range scans only, never stored. */
export const INF_MIN = Symbol.for('tessera.INF_MIN');
export const INF_MAX = Symbol.for('tessera.INF_MAX');
export type Infinity_ = typeof INF_MIN | typeof INF_MAX;

/** One primary-key column's value. */
export type PkValue = string | bigint | Uint8Array;

/** A primary-key column's value, or an infinite bound (scans only). */
export type PkBound = PkValue | Infinity_;

/** A primary key: column name -> value, in the schema's column order. */
export type PrimaryKey = ReadonlyArray<readonly [column: string, value: PkValue]>;

/** One attribute cell's value. */
export type AttributeValue = string | bigint | number | boolean | Uint8Array;

/**
 * A cell version: milliseconds since the Unix epoch (Table Store versions are
 * millisecond timestamps), assigned by the server or given by the client
 * within the table's maxVersionOffset.
 */
export type Version = number;

/** One version of one attribute cell. */
export interface Cell {
  readonly column: string;
  readonly value: AttributeValue;
  readonly version: Version;
}
