/** The public surface of the Tessera client. */
export {
  TesseraClient,
  MEMBER_CHANGE_DEADLINE_MS,
  type KvWrite,
  type MemberChange,
  type NewMember,
  type NodeStatus,
  type ScanPage,
} from './client.ts';
export type { ClientRange } from './range-cache.ts';
export {
  BATCH_ROWS_MAX,
  SCAN_ALL_PAGES_DEFAULT,
  SCAN_LIMIT_DEFAULT,
  SCAN_LIMIT_MAX,
  TableHandle,
  rowFromJson,
  rowToJson,
  type AnyRow,
  type AttributeColumn,
  type BatchGetItem,
  type BatchResult,
  type BatchWriteItem,
  type CellsOf,
  type ColumnName,
  type GetRowOptions,
  type Increments,
  type IntegerColumn,
  type PkBoundOf,
  type PrimaryKeyOf,
  type PutRowOf,
  type RowOf,
  type RowPage,
  type RowShape,
  type RowUpdate,
  type ScanAllOptions,
  type ScanRowsOptions,
  type TableChanges,
  type TableSchemaInput,
  type Versioned,
  type WriteRowOptions,
} from './tables.ts';
export type { TableSchema } from '../table/schema.ts';
export type { ColumnCondition, RowCondition } from '../table/condition.ts';
export { INF_MAX, INF_MIN } from '../table/types.ts';
export type { BackoffOptions, CallOptions, ClientOptions, GetOptions } from './options.ts';
export type { WriteSession } from './session-pool.ts';
export { TesseraError, isTesseraError, type ErrorCode, type Retryable } from '../core/errors.ts';
