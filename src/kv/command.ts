/**
 * Commands of the replicated key-value state machine, and their encoding in
 * log entries. Every write carries its client session and sequence number so
 * that the state machine can apply it exactly once.
 */
import { assert } from '../core/assert.ts';

/** A state-changing command. Reads do not go through the log (ReadIndex). */
export interface KvCommand {
  /** Client session id. */
  readonly client: number;
  /** Per-session request number, strictly increasing. */
  readonly seq: number;
  /**
   * append: concatenates `value` to the current value (absent = empty); not
   * idempotent. table: a row write of the table data model, in `table`
   * (`key`, `value` and `expect` unused).
   */
  readonly op: 'put' | 'delete' | 'cas' | 'append' | 'table';
  readonly key: string;
  /** put / cas: the new value; append: the suffix. */
  readonly value: string | null;
  /** cas: the expected current value (null = absent). */
  readonly expect: string | null;
  /**
   * When the proposing node proposed the command: milliseconds since the
   * Unix epoch (the simulator: since the start of its run) by that node's
   * clock, a non-negative integer. The state machine's log clock, which
   * expires idle client sessions, advances to the largest value applied
   * (Raft thesis §6.3). Absent in entries written before it existed: such
   * an entry carries no time information and leaves the log clock as is.
   */
  readonly at?: number;
  /** The row write of a `table` command. */
  readonly table?: TableWrite;
  /** Or several row writes of one range in one command (batchWriteRow). */
  readonly batch?: { readonly writes: readonly TableWrite[]; readonly atomic: boolean };
}

/**
 * A row write as it travels in the log: everything the state machine needs
 * to apply it the same way on every replica (the table's id and options as
 * the proposer saw them, the encoded row key, values in their JSON form).
 */
export interface TableWrite {
  /** The table's id (from its schema in the meta range): its rows' key prefix. */
  readonly tableId: number;
  readonly options: {
    readonly maxVersions: number;
    readonly ttlSeconds: number | null;
    readonly maxVersionOffsetSeconds: number;
  };
  /**
   * The encoded primary key, base64. For a put with {@link autoIncrement}:
   * the encoded key columns before the auto-increment column.
   */
  readonly rowKey: string;
  /**
   * A put into a table with an auto-increment key column: the state machine
   * takes the next value of the partition's counter (strictly increasing,
   * never reused) and builds the row key `rowKey ‖ value ‖ suffix`.
   */
  readonly autoIncrement?: {
    /** The encoded partition key (first key column), base64: the counter's key. */
    readonly partition: string;
    /** The encoded key columns after the auto-increment column, base64. */
    readonly suffix: string;
  };
  /** gc: collect garbage versions from `rowKey` on, examining about `budget` records. */
  readonly kind: 'put' | 'update' | 'delete' | 'gc';
  readonly budget?: number;
  /** put: the row's cells. */
  readonly cells?: readonly { column: string; value: unknown; version?: number }[];
  /** update: the operations (`delta` of an increment as a decimal string). */
  readonly ops?: readonly (
    | { type: 'put'; column: string; value: unknown; version?: number }
    | { type: 'delete-column'; column: string }
    | { type: 'delete-version'; column: string; version: number }
    | { type: 'increment'; column: string; delta: string }
  )[];
  /** The row condition in its JSON form (src/table/condition.ts). */
  readonly condition?: unknown;
}

/** The outcome of applying a command. */
export interface KvResult {
  /** put/delete: always true. cas: whether it swapped. table: whether it applied. */
  readonly ok: boolean;
  /** table: why it did not apply (a failed condition, a bad value): nothing changed. */
  readonly error?: { readonly code: string; readonly message: string };
  /** table update: the cells written by increments (values in JSON form). */
  readonly increments?: readonly { column: string; value: unknown; version: number }[];
  /** table put with an auto-increment column: the row's encoded primary key (base64). */
  readonly rowKey?: string;
  /** gc: records removed, and the row key (base64) to resume from (null: the table is done). */
  readonly gc?: { readonly removed: number; readonly next: string | null };
  /** A batch: one result per write, in order. */
  readonly results?: readonly KvResult[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether `at` is a valid {@link KvCommand.at}: absent, or a non-negative safe integer. */
function validAt(at: unknown): boolean {
  return at === undefined || (Number.isSafeInteger(at) && (at as number) >= 0);
}

/**
 * The bytes of a log entry carrying `cmd` (JSON). A malformed `at` is a
 * programmer error of the proposer, caught here before it reaches the log.
 */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  assert(validAt(cmd.at), () => `kv command timestamp must be a non-negative integer: ${cmd.at}`);
  return encoder.encode(JSON.stringify(cmd));
}

/**
 * Decodes a command written by {@link encodeCommand}, with or without `at`.
 * Corrupt bytes are an assertion failure: the log is checksummed below.
 */
export function decodeCommand(data: Uint8Array): KvCommand {
  const v = JSON.parse(decoder.decode(data)) as KvCommand;
  assert(
    typeof v.client === 'number' &&
      typeof v.seq === 'number' &&
      typeof v.key === 'string' &&
      validAt(v.at),
    'malformed kv command',
  );
  return v;
}
