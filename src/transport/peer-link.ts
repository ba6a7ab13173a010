/**
 * One outbound connection to one peer, with its bounded send queue. The
 * link connects on demand (when something is queued, or at once when
 * keepalives are on), sends the handshake first, then its frames in order,
 * and after any failure reconnects with exponential backoff. Frames handed
 * to a socket that then fails are lost: Raft tolerates message loss and
 * resends what matters.
 *
 * Three kinds of outbound traffic, in this priority:
 *
 * 1. Envelope frames. Messages wait as encoded envelopes until the transport
 *    calls {@link PeerLink.coalesce} (once per event-loop turn), which packs
 *    them into as few frames as the per-frame bounds allow.
 * 2. Chunked snapshots, one at a time, one chunk whenever no envelope frame
 *    waits and the socket takes more: a heartbeat queued during a long
 *    snapshot waits behind at most the chunk already in the socket.
 * 3. A keepalive frame, when nothing at all was written for `keepaliveMs`.
 *
 * Memory: at most `sendQueueMsgsMax` messages and `sendQueueBytesMax` bytes
 * wait (a waiting envelope counts its payload plus the most a frame adds
 * around it). A snapshot waiting to stream counts as one message and no
 * bytes: the link holds the caller's data by reference and encodes one chunk
 * at a time; at most `snapshotSendsMax` snapshots wait. The socket itself
 * holds at most its high-water mark plus one frame, because the link stops
 * writing when `write` reports backpressure and resumes on 'drain'.
 */
import net from 'node:net';
import { crc32cUpdate } from '../core/crc32c.ts';
import { TesseraError } from '../core/errors.ts';
import type { NodeId, RangeId } from '../core/ids.ts';
import type { MsgSnap } from '../raft/types.ts';
import { backoffDelayMs, type BackoffPolicy } from './backoff.ts';
import { ENVELOPE_OVERHEAD_BYTES_MAX, coalesceFrames } from './coalesce.ts';
import { KEEPALIVE_FRAME, encodeHelloFrame, encodeSnapshotChunkFrame } from './frame.ts';
import type { TransportLogger } from './logger.ts';
import { snapshotChunkCount, snapshotChunkHead, type SnapshotChunk } from './snapshot-chunk.ts';

/** Where a peer listens. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Send counters. One object is shared by every link of a transport, so the
 * totals survive links that are closed.
 */
export interface SendCounters {
  /** Envelope frames handed to a socket. */
  framesSent: number;
  /** Envelopes in those frames; `envelopesSent / framesSent` is the coalescing ratio. */
  envelopesSent: number;
  /** Snapshot chunk frames handed to a socket. */
  snapshotChunksSent: number;
  /** Chunked snapshots whose last chunk was handed to a socket. */
  snapshotsSent: number;
  /** Chunked snapshots dropped after some chunks were sent (their connection closed). */
  snapshotsAborted: number;
  /** Keepalive frames handed to a socket. */
  keepalivesSent: number;
}

/** Settings of a {@link PeerLink}; see `TcpTransportOptions` for their meaning. */
export interface PeerLinkOptions extends BackoffPolicy {
  readonly self: NodeId;
  readonly peer: NodeId;
  readonly clusterId: string;
  readonly sendQueueBytesMax: number;
  readonly sendQueueMsgsMax: number;
  readonly frameBytesMax: number;
  readonly frameEnvelopesMax: number;
  readonly snapshotChunkBytes: number;
  readonly snapshotSendsMax: number;
  readonly keepaliveMs: number;
  readonly connectTimeoutMs: number;
  readonly logger: TransportLogger;
  readonly random: () => number;
  readonly counters: SendCounters;
  /** Counts one message to this peer as dropped after it was accepted (a snapshot cut short). */
  readonly countDrop: () => void;
}

/** A frame in the queue and how many envelopes it carries. */
interface QueuedFrame {
  readonly frame: Uint8Array;
  readonly envelopes: number;
}

/** A snapshot waiting to stream, or streaming (once `id` is set). */
interface OutgoingSnapshot {
  readonly range: RangeId;
  readonly msg: MsgSnap;
  readonly count: number;
  /** Set when chunk 0 is produced; unique per link, so per connection too. */
  id: number | null;
  next: number;
  /** CRC-32C of the data of the chunks produced so far. */
  crc: number;
}

/** The outbound side of the transport for one peer. Owned by `TcpTransport`. */
export class PeerLink {
  private address: PeerAddress;
  private socket: net.Socket | null = null;
  private connected = false;
  private connectedAtMs = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  /** Encoded envelopes waiting for {@link coalesce}. */
  private pending: Uint8Array[] = [];
  /** Bytes reserved by `pending`: payloads plus the most a frame adds to each. */
  private pendingBytes = 0;
  private readonly queue: QueuedFrame[] = [];
  private queuedFrameBytes = 0;
  private queuedEnvelopes = 0;
  private readonly snapshots: OutgoingSnapshot[] = [];
  private nextSnapshotId = 0;
  /** When anything was last handed to the socket (monotonic ms). */
  private lastSentMs = performance.now();
  private closed = false;

  constructor(
    address: PeerAddress,
    private readonly opts: PeerLinkOptions,
  ) {
    this.address = address;
    // With keepalives on, a link exists to keep the peer informed that this node lives: it
    // connects now, and stays connected, whether or not there is anything to send.
    if (opts.keepaliveMs > 0) {
      this.connect();
      this.armKeepalive(opts.keepaliveMs);
    }
  }

  /** Messages waiting: envelopes (coalesced or not) plus snapshots not fully sent. */
  get queuedMsgs(): number {
    return this.pending.length + this.queuedEnvelopes + this.snapshots.length;
  }

  /** Bytes waiting (reserved by uncoalesced envelopes plus queued frames). */
  get queuedBytesTotal(): number {
    return this.pendingBytes + this.queuedFrameBytes;
  }

  /**
   * Accepts an encoded envelope (at most `frameBytesMax` bytes) for the next
   * {@link coalesce}. Returns false, accepting nothing, if the queue bounds
   * would be exceeded or the link is closed: the caller counts the drop.
   */
  enqueueEnvelope(payload: Uint8Array): boolean {
    const reservedBytes = payload.length + ENVELOPE_OVERHEAD_BYTES_MAX;
    if (!this.hasRoom(reservedBytes)) return false;
    this.pending.push(payload);
    this.pendingBytes += reservedBytes;
    return true;
  }

  /**
   * Accepts a snapshot message to stream in chunks once the envelope frames
   * ahead of it are written. Returns false, accepting nothing, if
   * `snapshotSendsMax` snapshots already wait, the message bound is reached
   * or the link is closed: the caller counts the drop.
   */
  enqueueSnapshot(range: RangeId, msg: MsgSnap): boolean {
    if (!this.hasRoom(0) || this.snapshots.length >= this.opts.snapshotSendsMax) return false;
    const count = snapshotChunkCount(msg.snapshot.data.length, this.opts.snapshotChunkBytes);
    this.snapshots.push({ range, msg, count, id: null, next: 0, crc: 0 });
    this.kick();
    return true;
  }

  /**
   * Packs the envelopes accepted since the last call into frames (see
   * coalesce.ts) and starts sending them, connecting first if needed.
   */
  coalesce(): void {
    if (this.closed || this.pending.length === 0) return;
    const frames = coalesceFrames(
      this.pending,
      this.opts.frameEnvelopesMax,
      this.opts.frameBytesMax,
    );
    this.pending = [];
    this.pendingBytes = 0;
    for (const f of frames) {
      this.queue.push(f);
      this.queuedFrameBytes += f.frame.length;
      this.queuedEnvelopes += f.envelopes;
    }
    this.kick();
  }

  /** Points the link at a new address; an open connection to the old one is closed. */
  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.failures = 0;
    this.socket?.destroy();
  }

  /** Closes the connection, cancels every timer and discards what waits. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.keepaliveTimer !== null) clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = null;
    this.socket?.destroy();
    this.socket = null;
    this.pending = [];
    this.pendingBytes = 0;
    this.queue.length = 0;
    this.queuedFrameBytes = 0;
    this.queuedEnvelopes = 0;
    this.snapshots.length = 0;
  }

  private hasRoom(reservedBytes: number): boolean {
    return (
      !this.closed &&
      this.queuedMsgs < this.opts.sendQueueMsgsMax &&
      this.queuedBytesTotal + reservedBytes <= this.opts.sendQueueBytesMax
    );
  }

  /** Whether the link should be connected. */
  private wantsConnection(): boolean {
    return this.opts.keepaliveMs > 0 || this.queue.length > 0 || this.snapshots.length > 0;
  }

  private kick(): void {
    if (this.connected) this.flush();
    else if (this.socket === null && this.reconnectTimer === null) this.connect();
  }

  private connect(): void {
    const socket = net.connect({ host: this.address.host, port: this.address.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(this.opts.connectTimeoutMs, () => socket.destroy());
    socket.on('connect', () => this.onConnect(socket));
    socket.on('data', () => {}); // The peer never sends on our outbound connection; read to see EOF.
    socket.on('drain', () => this.flush());
    socket.on('error', (err) => this.onError(err));
    socket.on('close', () => this.onClose(socket));
  }

  private onConnect(socket: net.Socket): void {
    if (this.socket !== socket) return;
    this.connected = true;
    this.connectedAtMs = Date.now();
    socket.setTimeout(0);
    this.write(socket, encodeHelloFrame({ node: this.opts.self, cluster: this.opts.clusterId }));
    this.flush();
  }

  private write(socket: net.Socket, frame: Uint8Array): boolean {
    this.lastSentMs = performance.now();
    return socket.write(frame);
  }

  /**
   * Hands frames to the socket until it reports backpressure: every queued
   * envelope frame first, then the next snapshot chunk, and again.
   */
  private flush(): void {
    const socket = this.socket;
    if (!this.connected || socket === null || socket.destroyed || socket.writableNeedDrain) return;
    socket.cork();
    let writable = true;
    while (writable) {
      const queued = this.queue.shift();
      if (queued !== undefined) {
        this.queuedFrameBytes -= queued.frame.length;
        this.queuedEnvelopes -= queued.envelopes;
        this.opts.counters.framesSent++;
        this.opts.counters.envelopesSent += queued.envelopes;
        writable = this.write(socket, queued.frame);
        continue;
      }
      const chunk = this.nextChunkFrame();
      if (chunk === null) break;
      writable = this.write(socket, chunk);
    }
    socket.uncork();
  }

  /** Encodes the next chunk of the first waiting snapshot, or null if none waits. */
  private nextChunkFrame(): Uint8Array | null {
    for (;;) {
      const s = this.snapshots[0];
      if (s === undefined) return null;
      if (s.id === null) s.id = this.nextSnapshotId++;
      const chunk = this.chunkOf(s);
      let frame: Uint8Array;
      try {
        frame = encodeSnapshotChunkFrame(chunk, this.opts.frameBytesMax);
      } catch (err) {
        if (!(err instanceof TesseraError)) throw err;
        // Only chunk 0 can grow past a frame (its head carries the configuration); nothing
        // of this snapshot was sent yet, so dropping it leaves no partial at the peer.
        this.opts.logger.warn(
          { peer: this.opts.peer, code: err.code, err },
          'dropping snapshot: chunk too large',
        );
        this.snapshots.shift();
        this.opts.countDrop();
        continue;
      }
      s.next++;
      this.opts.counters.snapshotChunksSent++;
      if (s.next === s.count) {
        this.snapshots.shift();
        this.opts.counters.snapshotsSent++;
      }
      return frame;
    }
  }

  private chunkOf(s: OutgoingSnapshot): SnapshotChunk {
    const { data } = s.msg.snapshot;
    const start = s.next * this.opts.snapshotChunkBytes;
    const end = Math.min(data.length, start + this.opts.snapshotChunkBytes);
    s.crc = crc32cUpdate(s.crc, data, start, end);
    const last = s.next === s.count - 1;
    return {
      id: s.id!,
      index: s.next,
      count: s.count,
      totalBytes: data.length,
      data: data.subarray(start, end),
      head: s.next === 0 ? snapshotChunkHead({ range: s.range, msg: s.msg }) : null,
      crc: last ? s.crc : null,
    };
  }

  private armKeepalive(delayMs: number): void {
    this.keepaliveTimer = setTimeout(() => this.onKeepaliveTimer(), delayMs);
  }

  /** Writes a keepalive if the link has been silent for `keepaliveMs`, then re-arms. */
  private onKeepaliveTimer(): void {
    this.keepaliveTimer = null;
    if (this.closed) return;
    const idleMs = performance.now() - this.lastSentMs;
    const { keepaliveMs } = this.opts;
    if (idleMs < keepaliveMs) {
      this.armKeepalive(keepaliveMs - idleMs);
      return;
    }
    const socket = this.socket;
    // A socket still draining is not idle; a link still connecting will send its handshake.
    if (this.connected && socket !== null && !socket.destroyed && !socket.writableNeedDrain) {
      this.opts.counters.keepalivesSent++;
      this.write(socket, KEEPALIVE_FRAME);
    } else {
      this.lastSentMs = performance.now();
    }
    this.armKeepalive(keepaliveMs);
  }

  private onError(err: Error): void {
    // Log only the transition from healthy to failing, not every retry.
    if (this.failures === 0 && !this.closed) {
      this.opts.logger.info({ peer: this.opts.peer, err: err.message }, 'peer connection failed');
    }
  }

  private onClose(socket: net.Socket): void {
    if (this.socket !== socket) return;
    const stable = this.connected && Date.now() - this.connectedAtMs >= this.opts.backoffMsMax;
    this.socket = null;
    this.connected = false;
    if (this.closed) return;
    this.abortStartedSnapshot();
    this.failures = stable ? 1 : this.failures + 1;
    this.scheduleReconnect();
  }

  /**
   * A snapshot partly sent on a lost connection cannot resume on the next
   * one (the peer discarded its partial): drop it, counted, rather than send
   * a tail the peer would refuse. Snapshots not yet started stay queued.
   */
  private abortStartedSnapshot(): void {
    const s = this.snapshots[0];
    if (s === undefined || s.id === null) return;
    this.snapshots.shift();
    this.opts.counters.snapshotsAborted++;
    this.opts.countDrop();
    this.opts.logger.info(
      { peer: this.opts.peer, range: s.range, sentChunks: s.next, chunks: s.count },
      'snapshot cut short by a lost connection',
    );
  }

  private scheduleReconnect(): void {
    const delayMs = backoffDelayMs(this.failures, this.opts, this.opts.random);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed && this.wantsConnection()) this.connect();
    }, delayMs);
  }
}
