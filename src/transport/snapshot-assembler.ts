/**
 * Reassembly of chunked snapshots on one inbound connection (see
 * snapshot-chunk.ts for the wire form). A snapshot is released only when
 * every chunk arrived, in order, with the totals announced by chunk 0, and
 * the CRC-32C of the whole data matches; anything else is a protocol
 * violation that throws, and the caller closes the connection.
 *
 * Partial snapshots are discarded only with their connection ({@link clear}):
 * a newer snapshot id never supersedes an older partial, because a sender
 * abandons a snapshot on an open connection only by closing it. Hence at most
 * `snapshotPartialsMax` snapshots may be open at once, and memory per
 * connection stays below `snapshotPartialsMax * snapshotBytesMax` (plus one
 * copy of one snapshot while it is joined).
 */
import { assert } from '../core/assert.ts';
import { crc32cUpdate } from '../core/crc32c.ts';
import { TesseraError } from '../core/errors.ts';
import type { Envelope } from './message-schema.ts';
import { snapshotTooLarge, type SnapshotChunk } from './snapshot-chunk.ts';

/** Bounds of a {@link SnapshotAssembler}. */
export interface SnapshotAssemblerLimits {
  /** Largest `totalBytes` accepted, checked on chunk 0 before anything is buffered. */
  readonly snapshotBytesMax: number;
  /** Most snapshots open (chunk 0 seen, last chunk not yet) at once. */
  readonly snapshotPartialsMax: number;
}

/** A snapshot whose chunk 0 arrived and whose last chunk has not. */
interface Partial {
  readonly head: Envelope;
  readonly count: number;
  readonly totalBytes: number;
  readonly parts: Uint8Array[];
  /** Index of the chunk expected next. */
  next: number;
  receivedBytes: number;
  /** CRC-32C of the bytes received so far. */
  crc: number;
}

function violation(what: string, details?: Readonly<Record<string, unknown>>): never {
  throw new TesseraError('INVALID_ARGUMENT', `bad snapshot chunk: ${what}`, details);
}

function join(parts: readonly Uint8Array[], totalBytes: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(totalBytes);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Reassembles the chunked snapshots of one connection. */
export class SnapshotAssembler {
  private readonly partials = new Map<number, Partial>();
  /** Highest snapshot id started on this connection; ids must increase. */
  private lastId = -1;

  constructor(private readonly limits: SnapshotAssemblerLimits) {
    assert(limits.snapshotBytesMax >= 0, 'snapshotBytesMax must be non-negative');
    assert(limits.snapshotPartialsMax >= 1, 'snapshotPartialsMax must be positive');
  }

  /**
   * Takes the next chunk of this connection. Returns the complete envelope
   * (with the whole `snapshot.data`) when `chunk` is the last of its
   * snapshot, else null. Throws `TesseraError`: REQUEST_TOO_LARGE (total above
   * `snapshotBytesMax`), RESOURCE_EXHAUSTED (more than `snapshotPartialsMax`
   * open), CORRUPTION (whole-data CRC mismatch) or INVALID_ARGUMENT (a reused
   * id, a chunk of no open snapshot, out of order, inconsistent totals, or
   * sizes that do not add up). After a throw the connection must be closed.
   */
  push(chunk: SnapshotChunk): Envelope | null {
    const partial = chunk.index === 0 ? this.open(chunk) : this.continued(chunk);
    if (partial.receivedBytes + chunk.data.length > partial.totalBytes) {
      violation('more bytes than totalBytes', { id: chunk.id, totalBytes: partial.totalBytes });
    }
    partial.parts.push(chunk.data);
    partial.receivedBytes += chunk.data.length;
    partial.crc = crc32cUpdate(partial.crc, chunk.data);
    partial.next++;
    if (partial.next < partial.count) return null;
    this.partials.delete(chunk.id);
    return this.finish(chunk, partial);
  }

  /** Snapshots open on this connection. */
  get openCount(): number {
    return this.partials.size;
  }

  /** Discards every partial snapshot (the connection closed). */
  clear(): void {
    this.partials.clear();
  }

  private open(chunk: SnapshotChunk): Partial {
    assert(chunk.head !== null, 'chunk 0 without head passed the schema check');
    if (chunk.id <= this.lastId) violation('snapshot id is not new', { id: chunk.id });
    if (chunk.totalBytes > this.limits.snapshotBytesMax) {
      snapshotTooLarge(this.limits.snapshotBytesMax, chunk.totalBytes);
    }
    if (this.partials.size >= this.limits.snapshotPartialsMax) {
      throw new TesseraError('RESOURCE_EXHAUSTED', 'too many partial snapshots on a connection', {
        limit: this.limits.snapshotPartialsMax,
      });
    }
    // Every chunk but an empty snapshot's only one carries a byte: bounds the chunk count.
    if (chunk.count > Math.max(1, chunk.totalBytes)) {
      violation('more chunks than bytes', { id: chunk.id, count: chunk.count });
    }
    this.lastId = chunk.id;
    const partial: Partial = {
      head: chunk.head,
      count: chunk.count,
      totalBytes: chunk.totalBytes,
      parts: [],
      next: 0,
      receivedBytes: 0,
      crc: 0,
    };
    this.partials.set(chunk.id, partial);
    return partial;
  }

  private continued(chunk: SnapshotChunk): Partial {
    const partial = this.partials.get(chunk.id);
    if (partial === undefined) violation('chunk of no open snapshot', { id: chunk.id });
    if (chunk.index !== partial.next) {
      violation('chunk out of order', { id: chunk.id, expected: partial.next, got: chunk.index });
    }
    if (chunk.count !== partial.count || chunk.totalBytes !== partial.totalBytes) {
      violation('totals differ from chunk 0', { id: chunk.id });
    }
    return partial;
  }

  private finish(last: SnapshotChunk, partial: Partial): Envelope {
    if (partial.receivedBytes !== partial.totalBytes) {
      violation('fewer bytes than totalBytes', { id: last.id, totalBytes: partial.totalBytes });
    }
    if (partial.crc !== last.crc) {
      throw new TesseraError('CORRUPTION', 'snapshot checksum mismatch', { id: last.id });
    }
    const msg = partial.head.msg;
    assert(msg.type === 'snap', 'a chunk head that is not a snapshot passed the schema check');
    const data = join(partial.parts, partial.totalBytes);
    return {
      range: partial.head.range,
      msg: { ...msg, snapshot: { meta: msg.snapshot.meta, data } },
    };
  }
}
