/**
 * The peer transport of one node over TCP. Connections are one-way: a node
 * sends to a peer on its own outbound connection (a {@link PeerLink}, one per
 * peer, opened on demand) and receives on the connections peers open to it.
 * The first frame on a connection is the handshake ({@link Hello}); a peer of
 * another cluster is refused. See frame.ts for the wire format.
 *
 * Failure model: the transport may drop, but never corrupts, reorders within
 * a connection or duplicates messages. `send` never throws for network
 * problems; what cannot be queued is dropped and counted. A bad inbound frame
 * (oversized, corrupt or malformed) closes only that connection.
 */
import net from 'node:net';
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import type { NodeId, RangeId } from '../core/ids.ts';
import type { Message } from '../raft/types.ts';
import { BACKOFF_DEFAULT } from './backoff.ts';
import {
  FRAME_BYTES_MAX_DEFAULT,
  FrameReader,
  decodeEnvelopes,
  decodeHello,
  encodeFrame,
  type Envelope,
  type Hello,
} from './frame.ts';
import { SILENT_LOGGER, type TransportLogger } from './logger.ts';
import { malformed } from './message-schema.ts';
import { PeerLink, type PeerAddress } from './peer-link.ts';

export type { PeerAddress } from './peer-link.ts';
export type { TransportLogger } from './logger.ts';

/** Default bound on frames queued per peer. */
export const SEND_QUEUE_MSGS_MAX_DEFAULT = 4096;
/** Default bound on bytes queued per peer: one largest frame plus 16 MiB of other traffic. */
export const SEND_QUEUE_BYTES_MAX_DEFAULT = FRAME_BYTES_MAX_DEFAULT + 16 * 1024 * 1024;
/** Default time allowed for a TCP connect, in milliseconds. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 5_000;
/** Default time an inbound connection may stay silent before its handshake, in milliseconds. */
export const HANDSHAKE_TIMEOUT_MS_DEFAULT = 5_000;
/** Default bound on simultaneously open inbound connections. */
export const INBOUND_CONNECTIONS_MAX_DEFAULT = 1024;

/** Settings of a {@link TcpTransport}. Every limit has a default. */
export interface TcpTransportOptions {
  /** This node. Sent in the handshake; inbound messages must be addressed to it. */
  readonly nodeId: NodeId;
  /** Peers must present the same cluster id in their handshake. */
  readonly clusterId: string;
  /**
   * Called once per received message, in arrival order per connection,
   * synchronously from the socket's data event. An exception it throws is a
   * bug of the caller and propagates (it is not treated as a bad frame).
   */
  readonly onMessage: (range: RangeId, msg: Message) => void;
  readonly logger?: TransportLogger;
  /** Where peers listen; replace it later with {@link TcpTransport.setAddressBook}. */
  readonly addresses?: ReadonlyMap<NodeId, PeerAddress>;
  /** Largest frame payload sent or accepted, in bytes. */
  readonly frameBytesMax?: number;
  /** Per-peer bound on queued bytes; a message that does not fit is dropped. */
  readonly sendQueueBytesMax?: number;
  /** Per-peer bound on queued messages; a message that does not fit is dropped. */
  readonly sendQueueMsgsMax?: number;
  /** First reconnect delay, in milliseconds (before jitter). */
  readonly backoffMsMin?: number;
  /** Largest reconnect delay, in milliseconds (before jitter). */
  readonly backoffMsMax?: number;
  readonly connectTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  readonly inboundConnectionsMax?: number;
  /** Source of jitter, a float in [0, 1); defaults to Math.random. */
  readonly random?: () => number;
}

/** Counters of a {@link TcpTransport}, a snapshot taken by {@link TcpTransport.stats}. */
export interface TransportStats {
  /** Messages dropped per destination: queue full, no address, too large, or closed. */
  readonly dropped: Readonly<Record<number, number>>;
  /** Messages waiting in each peer's send queue. */
  readonly queuedMsgs: Readonly<Record<number, number>>;
  /** Bytes waiting in each peer's send queue. */
  readonly queuedBytes: Readonly<Record<number, number>>;
  /** Inbound connections closed for an oversized, corrupt or malformed frame. */
  readonly badFrames: number;
  /** Inbound connections closed for a cluster id mismatch. */
  readonly rejectedHandshakes: number;
  /** Messages delivered to `onMessage`. */
  readonly received: number;
}

/** State of one inbound connection. */
interface Inbound {
  readonly socket: net.Socket;
  readonly remote: string;
  readonly reader: FrameReader;
  hello: Hello | null;
}

type Resolved = Required<Omit<TcpTransportOptions, 'addresses' | 'logger'>> & {
  readonly logger: TransportLogger;
};

function resolveOptions(o: TcpTransportOptions): Resolved {
  const resolved: Resolved = {
    ...o,
    logger: o.logger ?? SILENT_LOGGER,
    frameBytesMax: o.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT,
    sendQueueBytesMax: o.sendQueueBytesMax ?? SEND_QUEUE_BYTES_MAX_DEFAULT,
    sendQueueMsgsMax: o.sendQueueMsgsMax ?? SEND_QUEUE_MSGS_MAX_DEFAULT,
    backoffMsMin: o.backoffMsMin ?? BACKOFF_DEFAULT.backoffMsMin,
    backoffMsMax: o.backoffMsMax ?? BACKOFF_DEFAULT.backoffMsMax,
    connectTimeoutMs: o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT,
    inboundConnectionsMax: o.inboundConnectionsMax ?? INBOUND_CONNECTIONS_MAX_DEFAULT,
    random: o.random ?? Math.random,
  };
  assert(
    resolved.sendQueueMsgsMax > 0 && resolved.sendQueueBytesMax > 0,
    'send queue bounds must be positive',
  );
  assert(resolved.inboundConnectionsMax > 0, 'inboundConnectionsMax must be positive');
  return resolved;
}

/** The TCP peer transport of one node. */
export class TcpTransport {
  private readonly opts: Resolved;
  private addresses: ReadonlyMap<NodeId, PeerAddress>;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<Inbound>();
  private readonly dropped = new Map<NodeId, number>();
  private readonly server: net.Server;
  private listening = false;
  private closed = false;
  private badFrames = 0;
  private rejectedHandshakes = 0;
  private received = 0;

  constructor(options: TcpTransportOptions) {
    this.opts = resolveOptions(options);
    this.addresses = new Map(options.addresses ?? []);
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /**
   * Starts accepting peer connections on `host:port` (port 0 picks a free
   * port). Resolves to the bound port. Call at most once.
   */
  listen(host: string, port: number): Promise<number> {
    assert(!this.listening && !this.closed, 'listen called twice or after close');
    this.listening = true;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.opts.logger.warn({ err }, 'peer listener error'));
        resolve(this.port);
      });
    });
  }

  /** The bound port; only valid once {@link listen} resolved. */
  get port(): number {
    const address = this.server.address();
    assert(address !== null && typeof address === 'object', 'transport is not listening');
    return address.port;
  }

  /**
   * Replaces the address book. Links to peers no longer listed are closed
   * (their queues discarded); links to peers whose address changed reconnect.
   */
  setAddressBook(addresses: ReadonlyMap<NodeId, PeerAddress>): void {
    this.addresses = new Map(addresses);
    for (const [peer, link] of this.links) {
      const address = this.addresses.get(peer);
      if (address === undefined) {
        link.close();
        this.links.delete(peer);
      } else {
        link.setAddress(address);
      }
    }
  }

  /**
   * Queues `msg` for delivery to `to` in `range`. Never throws for network
   * problems or limits: a message that cannot be queued (queue full, unknown
   * peer, larger than `frameBytesMax`, transport closed) is dropped and
   * counted in `stats().dropped[to]`. Requires `msg.to === to`.
   */
  send(to: NodeId, range: RangeId, msg: Message): void {
    assert(msg.to === to, () => `message addressed to ${msg.to} sent to ${to}`);
    const link = this.linkFor(to);
    const frame = link === null ? null : this.encode(to, { range, msg });
    if (link === null || frame === null || !link.enqueue(frame)) this.countDrop(to);
  }

  /** A snapshot of the counters. */
  stats(): TransportStats {
    const perLink = (f: (l: PeerLink) => number): Record<number, number> =>
      Object.fromEntries([...this.links].map(([peer, link]) => [peer, f(link)]));
    return {
      dropped: Object.fromEntries(this.dropped),
      queuedMsgs: perLink((l) => l.queuedMsgs),
      queuedBytes: perLink((l) => l.queuedBytesTotal),
      badFrames: this.badFrames,
      rejectedHandshakes: this.rejectedHandshakes,
      received: this.received,
    };
  }

  /** Stops listening, closes every connection and cancels every timer. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const conn of this.inbound) conn.socket.destroy();
    this.inbound.clear();
    if (!this.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private linkFor(peer: NodeId): PeerLink | null {
    if (this.closed) return null;
    const existing = this.links.get(peer);
    if (existing !== undefined) return existing;
    const address = this.addresses.get(peer);
    if (address === undefined) return null;
    const link = new PeerLink(address, { ...this.opts, self: this.opts.nodeId, peer });
    this.links.set(peer, link);
    return link;
  }

  /** Encodes one envelope; null (logged) if it exceeds `frameBytesMax`. */
  private encode(peer: NodeId, envelope: Envelope): Uint8Array | null {
    try {
      return encodeFrame(envelope, this.opts.frameBytesMax);
    } catch (err) {
      if (!(err instanceof TesseraError)) throw err;
      this.opts.logger.warn({ peer, code: err.code, err }, 'dropping message: frame too large');
      return null;
    }
  }

  private countDrop(peer: NodeId): void {
    this.dropped.set(peer, (this.dropped.get(peer) ?? 0) + 1);
  }

  private accept(socket: net.Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (this.closed || this.inbound.size >= this.opts.inboundConnectionsMax) {
      this.opts.logger.warn({ remote }, 'refusing connection: too many inbound connections');
      socket.destroy();
      return;
    }
    const conn: Inbound = {
      socket,
      remote,
      reader: new FrameReader(this.opts.frameBytesMax),
      hello: null,
    };
    this.inbound.add(conn);
    socket.setTimeout(this.opts.handshakeTimeoutMs, () => {
      this.opts.logger.warn({ remote }, 'closing connection: no handshake');
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', (err) =>
      this.opts.logger.info({ remote, err: err.message }, 'inbound connection error'),
    );
    socket.on('close', () => this.inbound.delete(conn));
  }

  private onData(conn: Inbound, chunk: Uint8Array): void {
    if (conn.socket.destroyed) return;
    let envelopes: Envelope[];
    try {
      envelopes = this.decode(conn, chunk);
    } catch (err) {
      if (!(err instanceof TesseraError)) throw err;
      this.rejectBadFrame(conn, err);
      return;
    }
    for (const { range, msg } of envelopes) {
      this.received++;
      this.opts.onMessage(range, msg);
    }
  }

  /** Decodes a chunk's frames: the handshake first, then envelopes addressed to this node. */
  private decode(conn: Inbound, chunk: Uint8Array): Envelope[] {
    const envelopes: Envelope[] = [];
    for (const payload of conn.reader.push(chunk)) {
      if (conn.hello === null) {
        if (!this.acceptHello(conn, decodeHello(payload))) return [];
        continue;
      }
      for (const envelope of decodeEnvelopes(payload)) {
        this.checkAddressing(conn.hello, envelope.msg);
        envelopes.push(envelope);
      }
    }
    return envelopes;
  }

  private acceptHello(conn: Inbound, hello: Hello): boolean {
    if (hello.cluster !== this.opts.clusterId) {
      this.rejectedHandshakes++;
      this.opts.logger.warn(
        { remote: conn.remote, peer: hello.node, cluster: hello.cluster },
        'closing connection: cluster id mismatch',
      );
      conn.socket.destroy();
      return false;
    }
    conn.hello = hello;
    conn.socket.setTimeout(0);
    return true;
  }

  /** A message must come from the node that shook hands and be addressed to this node. */
  private checkAddressing(hello: Hello, msg: Message): void {
    if (msg.from !== hello.node) malformed('msg.from', 'differs from the handshake node');
    if (msg.to !== this.opts.nodeId) malformed('msg.to', 'is not this node');
  }

  private rejectBadFrame(conn: Inbound, err: TesseraError): void {
    this.badFrames++;
    this.opts.logger.warn(
      { remote: conn.remote, peer: conn.hello?.node, code: err.code, err },
      'closing connection: bad frame',
    );
    conn.socket.destroy();
  }
}
