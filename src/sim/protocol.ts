/**
 * Messages between simulated clients and nodes (the client API in miniature).
 */
import type { NodeId } from '../core/ids.ts';

export type KvOpName = 'put' | 'get' | 'delete' | 'cas';

export interface ClientRequest {
  /** The client that sent it (answers go back to it). */
  readonly client: number;
  /** Exactly-once session id: a client opens new sessions over its life. */
  readonly session: number;
  /** Identifies one attempt; answers to older attempts are ignored. */
  readonly attempt: number;
  /** Session sequence number: the same for every attempt of one operation. */
  readonly seq: number;
  readonly op: KvOpName;
  /** A key-value key, or a row of the simulated table (`row:...`, src/sim/table-workload.ts). */
  readonly key: string;
  readonly value: string | null;
  readonly expect: string | null;
}

export type ClientResponse =
  | {
      readonly attempt: number;
      readonly ok: true;
      /** cas: whether it swapped; otherwise true. */
      readonly swapped: boolean;
      /** get: the value read (null = absent). */
      readonly output: string | null;
    }
  | {
      readonly attempt: number;
      readonly ok: false;
      /** A refusal that guarantees the request was not applied by this attempt. */
      readonly code: string;
      readonly leaderHint: NodeId;
    };
