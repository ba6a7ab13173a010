/**
 * The replicated key-value state machine: put, delete, compare-and-swap, and
 * get (served outside the log after a ReadIndex). Exactly-once: each client
 * session's last sequence number and result are remembered, so a retried
 * command (the same session and sequence number, proposed again after a
 * timeout or a leader change) answers from memory instead of applying twice,
 * and a command older than the session's last one is not applied at all.
 */
import { assert, assertNever } from '../core/assert.ts';
import type { KvCommand, KvResult } from './command.ts';

interface Session {
  seq: number;
  result: KvResult;
}

/** How a command was handled. */
export type ApplyOutcome =
  | { readonly kind: 'applied'; readonly result: KvResult }
  /** Same session and sequence as the last applied command: its remembered result. */
  | { readonly kind: 'duplicate'; readonly result: KvResult }
  /** Older than the session's last command: the client gave up on it; nothing applied. */
  | { readonly kind: 'stale' };

export class KvStateMachine {
  private readonly data = new Map<string, string>();
  private readonly sessions = new Map<number, Session>();

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  apply(cmd: KvCommand): ApplyOutcome {
    const session = this.sessions.get(cmd.client);
    if (session !== undefined) {
      if (cmd.seq === session.seq) return { kind: 'duplicate', result: session.result };
      if (cmd.seq < session.seq) return { kind: 'stale' };
    }
    const result = this.execute(cmd);
    this.sessions.set(cmd.client, { seq: cmd.seq, result });
    return { kind: 'applied', result };
  }

  private execute(cmd: KvCommand): KvResult {
    switch (cmd.op) {
      case 'put':
        assert(cmd.value !== null, 'put without value');
        this.data.set(cmd.key, cmd.value);
        return { ok: true };
      case 'delete':
        this.data.delete(cmd.key);
        return { ok: true };
      case 'cas': {
        if (this.get(cmd.key) !== cmd.expect) return { ok: false };
        if (cmd.value === null) this.data.delete(cmd.key);
        else this.data.set(cmd.key, cmd.value);
        return { ok: true };
      }
      default:
        return assertNever(cmd.op, 'kv op');
    }
  }

  /** Serializes the whole state (data and sessions). */
  snapshot(): Uint8Array {
    const body = {
      data: [...this.data.entries()],
      sessions: [...this.sessions.entries()],
    };
    return new TextEncoder().encode(JSON.stringify(body));
  }

  static restore(bytes: Uint8Array): KvStateMachine {
    const sm = new KvStateMachine();
    if (bytes.length === 0) return sm;
    const body = JSON.parse(new TextDecoder().decode(bytes)) as {
      data: [string, string][];
      sessions: [number, Session][];
    };
    for (const [k, v] of body.data) sm.data.set(k, v);
    for (const [c, s] of body.sessions) sm.sessions.set(c, s);
    return sm;
  }
}
