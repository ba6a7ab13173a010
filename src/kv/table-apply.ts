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
import { deleteRow, gcRange, putRow, updateRow, type UpdateOp } from '../table/row-store.ts';

/** Records one garbage-collection command examines when it names no budget. */
export const GC_BUDGET_DEFAULT = 10_000;
import { attributeFromJson, attributeToJson } from '../table/values.ts';
import { encodePrimaryKey } from '../table/key-codec.ts';
import { INT64_MAX } from '../table/int64.ts';

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
    let rowKey: Uint8Array = new Uint8Array(Buffer.from(w.rowKey, 'base64'));
    const condition = w.condition === undefined ? undefined : parseConditionJson(w.condition);
    switch (w.kind) {
      case 'put':
        if (w.autoIncrement !== undefined) rowKey = nextAutoKey(view, rowKey, w.autoIncrement);
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
        return w.autoIncrement === undefined
          ? { ok: true }
          : { ok: true, rowKey: Buffer.from(rowKey).toString('base64') };
      case 'delete':
        deleteRow(view, rowKey, w.options, now, condition);
        return { ok: true };
      case 'gc': {
        const r = gcRange(view, rowKey, null, w.options, now, w.budget ?? GC_BUDGET_DEFAULT);
        const next = r.next === null ? null : Buffer.from(r.next).toString('base64');
        return { ok: true, gc: { removed: r.removed, next } };
      }
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

/** The first byte of an auto-increment counter's key in a table's key space (rows use L, W, D). */
const AUTO_INCREMENT_TAG = 0x41; // 'A'

/**
 * Takes the next value of a partition's auto-increment counter (1 for a new
 * partition; never reused, even after deletes) and returns the row key with it.
 */
function nextAutoKey(
  view: KvView,
  before: Uint8Array,
  auto: NonNullable<TableWrite['autoIncrement']>,
): Uint8Array {
  const partition = Buffer.from(auto.partition, 'base64');
  const counterKey = new Uint8Array(partition.length + 1);
  counterKey[0] = AUTO_INCREMENT_TAG;
  counterKey.set(partition, 1);
  const stored = view.get(counterKey);
  const last = stored === undefined ? 0n : Buffer.from(stored).readBigInt64BE();
  if (last >= INT64_MAX)
    throw new TesseraError('RESOURCE_EXHAUSTED', 'the auto-increment counter is exhausted');
  const next = last + 1n;
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64BE(next);
  view.put(counterKey, new Uint8Array(bytes));
  const value = encodePrimaryKey(['integer'], [next]);
  const suffix = Buffer.from(auto.suffix, 'base64');
  const key = new Uint8Array(before.length + value.length + suffix.length);
  key.set(before);
  key.set(value, before.length);
  key.set(suffix, before.length + value.length);
  return key;
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
