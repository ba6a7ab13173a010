/** The public surface of the Tessera client. */
export { TesseraClient, type KvWrite, type NodeStatus } from './client.ts';
export type { BackoffOptions, CallOptions, ClientOptions, GetOptions } from './options.ts';
export type { WriteSession } from './session-pool.ts';
export { TesseraError, isTesseraError, type ErrorCode, type Retryable } from '../core/errors.ts';
