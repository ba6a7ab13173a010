/**
 * Applying a table row write ({@link TableWrite}) inside a range's state
 * machine: the JSON forms from the log become the table model's values, and
 * the row logic (src/table/row-store.ts) runs over the table's key prefix
 * in the range. Errors of the write itself (a failed condition, a bad
 * version) are results, the same on every replica, not crashes.
 */
import { TesseraError, isTesseraError } from '../core/errors.ts';
import type { KvResult, TableWrite } from './command.ts';
import type { KvView } from '../table/kv-view.ts';
import { parseConditionJson } from '../table/condition.ts';
import { deleteRow, putRow, updateRow, type UpdateOp } from '../table/row-store.ts';
import { attributeFromJson, attributeToJson } from '../table/values.ts';

/** The one-byte tag of table rows inside a range (KV data is 'd', sessions 's'). */
export const TABLE_TAG = 0x54; // 'T'

/** The key prefix of table `tableId`'s records inside a range: the tag and the id (u32, big-endian). */
export function tablePrefix(tableId: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = TABLE_TAG;
  new DataView(out.buffer).setUint32(1, tableId);
  return out;
}

/**
 * Applies `w` to `view` (the table's prefix) at `now` (the log clock, ms).
 * Throws only for bugs; operational failures come back as `{ok: false, error}`
 * and the caller must then discard the view's writes.
 */
export function applyTableWrite(view: KvView, w: TableWrite, now: number): KvResult {
  try {
    const rowKey = new Uint8Array(Buffer.from(w.rowKey, 'base64'));
    const condition = w.condition === undefined ? undefined : parseConditionJson(w.condition);
    switch (w.kind) {
      case 'put':
        putRow(
          view,
          rowKey,
          (w.cells ?? []).map((c) => ({
            column: c.column,
            value: attributeFromJson(c.value, `column ${c.column}`),
            ...(c.version !== undefined ? { version: c.version } : {}),
          })),
          w.options,
          now,
          condition,
        );
        return { ok: true };
      case 'delete':
        deleteRow(view, rowKey, w.options, now, condition);
        return { ok: true };
      case 'update': {
        const cells = updateRow(
          view,
          rowKey,
          (w.ops ?? []).map(updateOp),
          w.options,
          now,
          condition,
        );
        const increments = cells.map((c) => ({
          column: c.column,
          value: attributeToJson(c.value),
          version: c.version,
        }));
        return { ok: true, increments };
      }
      default:
        throw new TesseraError('INVALID_ARGUMENT', `unknown row write ${String(w.kind)}`);
    }
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return { ok: false, error: { code: e.code, message: e.message } };
  }
}

function updateOp(op: NonNullable<TableWrite['ops']>[number]): UpdateOp {
  switch (op.type) {
    case 'put':
      return {
        type: 'put',
        column: op.column,
        value: attributeFromJson(op.value, `column ${op.column}`),
        ...(op.version !== undefined ? { version: op.version } : {}),
      };
    case 'delete-column':
      return op;
    case 'delete-version':
      return op;
    case 'increment':
      if (!/^-?[0-9]{1,20}$/.test(op.delta)) {
        throw new TesseraError('INVALID_ARGUMENT', `increment of ${op.column}: not an integer`);
      }
      return { type: 'increment', column: op.column, delta: BigInt(op.delta) };
    default:
      throw new TesseraError('INVALID_ARGUMENT', 'unknown update operation');
  }
}
