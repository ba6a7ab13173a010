/**
 * The simulator's table workload: rows of one table used as registers, so
 * that the key-value linearizability checker (src/check) checks them too.
 *
 * A row is a register whose value is the latest version of its column `v`
 * (absent when the row does not exist). Register operations map onto row
 * operations as follows:
 * - put: putRow `{v}`;
 * - get: getRow, the latest `v` (null when the row does not exist);
 * - cas(expect, value): with `expect` null, putRow `{v: value}` on condition
 *   `expect: not_exist`; otherwise updateRow `put v = value` on condition
 *   `expect: exist` and `v = expect`. CONDITION_FAILED means "did not swap",
 *   a definite outcome like a cas that compared false;
 * - delete: deleteRow.
 *
 * History keys of rows start with {@link ROW_KEY_PREFIX}, so they never
 * collide with key-value keys and the checker, which partitions by key,
 * checks each row on its own. There is no meta range in the simulator: the
 * table's id and options are fixed for the run.
 */
import { assert } from '../core/assert.ts';
import type { KvCommand, TableWrite } from '../kv/command.ts';
import type { KvStateMachine } from '../kv/state-machine.ts';
import { encodePrimaryKey } from '../table/key-codec.ts';
import { getRow, type TableOptions } from '../table/row-store.ts';
import type { KvOpName } from './protocol.ts';

/** The simulated table's id (its rows' key prefix in the range). */
export const SIM_TABLE_ID = 7;
/** History keys of rows: this prefix, then the row's primary key (one string column). */
export const ROW_KEY_PREFIX = 'row:';
/** The register's column. */
export const VALUE_COLUMN = 'v';
/** Most rows a run uses (they are few, so that clients contend on them). */
export const TABLE_ROWS_MAX = 4;

/** Whether a history key names a row of the simulated table. */
export function isRowKey(key: string): boolean {
  return key.startsWith(ROW_KEY_PREFIX);
}

/** The history key of row `i` of the simulated table. */
export function rowKeyName(i: number): string {
  assert(Number.isInteger(i) && i >= 0 && i < TABLE_ROWS_MAX, () => `row ${i} out of range`);
  return `${ROW_KEY_PREFIX}r${i}`;
}

/** The simulated table's options: `maxVersions` from the seed, no TTL (a register never expires). */
export function simTableOptions(maxVersions: number): TableOptions {
  return { maxVersions, ttlSeconds: null, maxVersionOffsetSeconds: 0 };
}

/** The encoded primary key of the row a history key names. */
function encodedRowKey(key: string): Uint8Array {
  assert(isRowKey(key), () => `${key} is not a row key`);
  return encodePrimaryKey(['string'], [key.slice(ROW_KEY_PREFIX.length)]);
}

/**
 * The row write that performs register operation `op` on row `key` (see
 * the file header). `value` is the new value of put and cas; `expect` the
 * value cas expects (null: the row must not exist).
 */
export function rowWrite(
  op: Exclude<KvOpName, 'get'>,
  key: string,
  value: string | null,
  expect: string | null,
  options: TableOptions,
): TableWrite {
  const base = {
    tableId: SIM_TABLE_ID,
    options,
    rowKey: Buffer.from(encodedRowKey(key)).toString('base64'),
  };
  const cells = [{ column: VALUE_COLUMN, value }];
  switch (op) {
    case 'put':
      assert(value !== null, 'a row put writes a value');
      return { ...base, kind: 'put', cells };
    case 'delete':
      return { ...base, kind: 'delete' };
    case 'cas':
      assert(value !== null, 'a row cas writes a value');
      if (expect === null)
        return { ...base, kind: 'put', cells, condition: { expect: 'not_exist' } };
      return {
        ...base,
        kind: 'update',
        ops: [{ type: 'put', column: VALUE_COLUMN, value }],
        condition: {
          expect: 'exist',
          if: { column: VALUE_COLUMN, op: '=', value: expect, passIfMissing: false },
        },
      };
  }
}

/**
 * The command a proposer puts in the log for register operation `op` on
 * row `key` of a client session (the proposer adds `at`).
 */
export function rowCommand(
  session: number,
  seq: number,
  op: Exclude<KvOpName, 'get'>,
  key: string,
  value: string | null,
  expect: string | null,
  options: TableOptions,
): KvCommand {
  return {
    client: session,
    seq,
    op: 'table',
    key: '',
    value: null,
    expect: null,
    table: rowWrite(op, key, value, expect, options),
  };
}

/**
 * Reads the register of row `key` from the committed state of `sm` at
 * `nowMs` (the reading node's clock): the latest `v`, or null when the row
 * does not exist.
 */
export function readRowValue(
  sm: KvStateMachine,
  key: string,
  options: TableOptions,
  nowMs: number,
): string | null {
  const row = getRow(
    sm.tableView(SIM_TABLE_ID),
    encodedRowKey(key),
    { columns: [VALUE_COLUMN] },
    options,
    nowMs,
  );
  const latest = row?.cells[0]?.value;
  if (latest === undefined) return null;
  assert(typeof latest === 'string', () => `row ${key} holds a ${typeof latest} in v`);
  return latest;
}

/**
 * Whether a row write's result is one the workload allows: success, or a
 * failed condition of a conditional write (a cas that did not swap).
 * Anything else is a bug of the table path or of this mapping.
 */
export function rowResultExpected(
  write: TableWrite,
  result: { readonly ok: boolean; readonly error?: { readonly code: string } },
): boolean {
  return result.ok || (write.condition !== undefined && result.error?.code === 'CONDITION_FAILED');
}
