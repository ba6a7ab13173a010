/**
 * Client-observed histories of key-value operations: the input of the
 * consistency checkers in this directory (see linearizability.ts).
 */

/** One client operation as observed by the client. Times are milliseconds (virtual or wall). */
export interface KvOperation {
  client: number;
  op: 'put' | 'get' | 'delete' | 'cas';
  key: string;
  /** Value written by put, or the new value of cas; null otherwise. */
  value: string | null;
  /** cas: the expected current value (null = key must be absent); null otherwise. */
  expect: string | null;
  call: number;
  /** Completion time, or null when the outcome is unknown (timed out). */
  return: number | null;
  /** true: took effect (cas: swapped). false: definitely did not take effect (cas: compare failed or error). null: unknown outcome. */
  ok: boolean | null;
  /** get: the value read (null = absent). null for other ops. */
  output: string | null;
}
