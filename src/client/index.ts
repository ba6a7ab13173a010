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
export type { BackoffOptions, CallOptions, ClientOptions, GetOptions } from './options.ts';
export type { WriteSession } from './session-pool.ts';
export { TesseraError, isTesseraError, type ErrorCode, type Retryable } from '../core/errors.ts';
