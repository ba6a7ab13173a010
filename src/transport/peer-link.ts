/**
 * One outbound connection to one peer, with its bounded send queue. The
 * link connects on demand (when something is queued), sends the handshake
 * first, then the queued frames in order, and after any failure reconnects
 * with exponential backoff. Frames handed to a socket that then fails are
 * lost: Raft tolerates message loss and resends what matters.
 *
 * Memory: at most `sendQueueMsgsMax` frames and `sendQueueBytesMax` bytes
 * wait in the queue; the socket itself holds at most its high-water mark
 * plus one frame, because the link stops writing when `write` reports
 * backpressure and resumes on 'drain'.
 */
import net from 'node:net';
import type { NodeId } from '../core/ids.ts';
import { backoffDelayMs, type BackoffPolicy } from './backoff.ts';
import { encodeHelloFrame } from './frame.ts';
import type { TransportLogger } from './logger.ts';

/** Where a peer listens. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Settings of a {@link PeerLink}; see `TcpTransportOptions` for their meaning. */
export interface PeerLinkOptions extends BackoffPolicy {
  readonly self: NodeId;
  readonly peer: NodeId;
  readonly clusterId: string;
  readonly sendQueueBytesMax: number;
  readonly sendQueueMsgsMax: number;
  readonly connectTimeoutMs: number;
  readonly logger: TransportLogger;
  readonly random: () => number;
}

/** The outbound side of the transport for one peer. Owned by `TcpTransport`. */
export class PeerLink {
  private address: PeerAddress;
  private socket: net.Socket | null = null;
  private connected = false;
  private connectedAtMs = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private closed = false;

  constructor(
    address: PeerAddress,
    private readonly opts: PeerLinkOptions,
  ) {
    this.address = address;
  }

  /** Frames waiting to be handed to the socket. */
  get queuedMsgs(): number {
    return this.queue.length;
  }

  /** Bytes of the frames waiting to be handed to the socket. */
  get queuedBytesTotal(): number {
    return this.queuedBytes;
  }

  /**
   * Queues an encoded frame and starts sending (connecting first if needed).
   * Returns false, queuing nothing, if the queue is full or the link closed:
   * the caller counts the drop.
   */
  enqueue(frame: Uint8Array): boolean {
    if (this.closed) return false;
    const full =
      this.queue.length >= this.opts.sendQueueMsgsMax ||
      this.queuedBytes + frame.length > this.opts.sendQueueBytesMax;
    if (full) return false;
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    this.kick();
    return true;
  }

  /** Points the link at a new address; an open connection to the old one is closed. */
  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.failures = 0;
    this.socket?.destroy();
  }

  /** Closes the connection, cancels any reconnect and discards the queue. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.socket?.destroy();
    this.socket = null;
    this.queue.length = 0;
    this.queuedBytes = 0;
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
    socket.write(encodeHelloFrame({ node: this.opts.self, cluster: this.opts.clusterId }));
    this.flush();
  }

  /** Hands queued frames to the socket until it reports backpressure. */
  private flush(): void {
    const socket = this.socket;
    if (!this.connected || socket === null || socket.destroyed || socket.writableNeedDrain) return;
    socket.cork();
    let writable = true;
    while (writable && this.queue.length > 0) {
      const frame = this.queue.shift()!;
      this.queuedBytes -= frame.length;
      writable = socket.write(frame);
    }
    socket.uncork();
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
    this.failures = stable ? 1 : this.failures + 1;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delayMs = backoffDelayMs(this.failures, this.opts, this.opts.random);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed && this.queue.length > 0) this.connect();
    }, delayMs);
  }
}
