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
  /** append: concatenates `value` to the current value (absent = empty); not idempotent. */
  readonly op: 'put' | 'delete' | 'cas' | 'append';
  readonly key: string;
  /** put / cas: the new value; append: the suffix. */
  readonly value: string | null;
  /** cas: the expected current value (null = absent). */
  readonly expect: string | null;
}

/** The outcome of applying a command. */
export interface KvResult {
  /** put/delete: always true. cas: whether it swapped. */
  readonly ok: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

/** Decodes a command written by {@link encodeCommand}. Corrupt bytes are an assertion failure: the log is checksummed below. */
export function decodeCommand(data: Uint8Array): KvCommand {
  const v = JSON.parse(decoder.decode(data)) as KvCommand;
  assert(
    typeof v.client === 'number' && typeof v.seq === 'number' && typeof v.key === 'string',
    'malformed kv command',
  );
  return v;
}
