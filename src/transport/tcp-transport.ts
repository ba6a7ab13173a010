/**
 * The peer transport of one node over TCP. Connections are one-way: a node
 * sends to a peer on its own outbound connection (a {@link PeerLink}, one per
 * peer, opened on demand) and receives on the connections peers open to it.
 * The first frame on a connection is the handshake ({@link Hello}); a peer of
 * another cluster is refused. See frame.ts for the wire format.
 *
 * Outbound, messages to one peer sent during one turn of the event loop
 * (any number of ranges) are coalesced into as few frames as the per-frame
 * bounds allow; a snapshot larger than `snapshotChunkBytes` streams in
 * chunks between the other frames; an idle link sends keepalives. Inbound,
 * chunks are reassembled per connection (snapshot-assembler.ts), and
 * `onPeerHeard` reports every peer that sent a valid frame.
 *
 * Failure model: the transport may drop, but never corrupts or duplicates
 * messages, and delivers the messages of one connection in send order,
 * except that a chunked snapshot is delivered when its last chunk arrives,
 * after messages sent later that overtook its chunks (Raft tolerates
 * reordering). `send` never throws for network problems; what cannot be
 * queued is dropped and counted. A bad inbound frame (oversized, corrupt or
 * malformed, or a chunk that breaks the reassembly rules) closes only that
 * connection.
 */
import { constants as bufferConstants } from 'node:buffer';
import net from 'node:net';
import { assert, assertNever } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import type { NodeId, RangeId } from '../core/ids.ts';
import type { Message } from '../raft/types.ts';
import { BACKOFF_DEFAULT } from './backoff.ts';
import { FRAME_ENVELOPES_MAX_DEFAULT, FRAME_ENVELOPES_MAX_LIMIT } from './coalesce.ts';
import {
  FRAME_BYTES_MAX_DEFAULT,
  FRAME_BYTES_MAX_LIMIT,
  FrameReader,
  decodeHello,
  decodePeerFrame,
  encodeEnvelopePayload,
  type Envelope,
  type Hello,
} from './frame.ts';
import { SILENT_LOGGER, type TransportLogger } from './logger.ts';
import { malformed } from './message-schema.ts';
import { PeerLink, type PeerAddress, type SendCounters } from './peer-link.ts';
import { SnapshotAssembler } from './snapshot-assembler.ts';
import {
  SNAPSHOT_BYTES_MAX_DEFAULT,
  SNAPSHOT_CHUNK_BYTES_DEFAULT,
  SNAPSHOT_PARTIALS_MAX_DEFAULT,
} from './snapshot-chunk.ts';

export type { PeerAddress } from './peer-link.ts';
export type { TransportLogger } from './logger.ts';

/** Default bound on messages queued per peer. */
export const SEND_QUEUE_MSGS_MAX_DEFAULT = 4096;
/** Default bound on bytes queued per peer: one largest frame plus 16 MiB of other traffic. */
export const SEND_QUEUE_BYTES_MAX_DEFAULT = FRAME_BYTES_MAX_DEFAULT + 16 * 1024 * 1024;
/** Default time allowed for a TCP connect, in milliseconds. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 5_000;
/** Default time an inbound connection may stay silent before its handshake, in milliseconds. */
export const HANDSHAKE_TIMEOUT_MS_DEFAULT = 5_000;
/** Default bound on simultaneously open inbound connections. */
export const INBOUND_CONNECTIONS_MAX_DEFAULT = 1024;
/** Default bound on snapshots waiting to stream per peer (the one streaming included). */
export const SNAPSHOT_SENDS_MAX_DEFAULT = 2;
/** Default silence after which a link sends a keepalive, in milliseconds. */
export const KEEPALIVE_MS_DEFAULT = 250;

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
  /**
   * Called when a valid frame (a keepalive, the handshake, any message or
   * chunk) arrives from `peer`: at most once per peer per turn of the event
   * loop, synchronously, before that turn's messages from it are delivered.
   * A node uses it to tell whether a peer node is alive. Exceptions propagate
   * as for `onMessage`.
   */
  readonly onPeerHeard?: (peer: NodeId) => void;
  readonly logger?: TransportLogger;
  /** Where peers listen; replace it later with {@link TcpTransport.setAddressBook}. */
  readonly addresses?: ReadonlyMap<NodeId, PeerAddress>;
  /** Largest frame payload sent or accepted, in bytes; default 4 MiB. */
  readonly frameBytesMax?: number;
  /** Most envelopes coalesced into one frame; at most 65535, default 1024. */
  readonly frameEnvelopesMax?: number;
  /** Per-peer bound on queued bytes; a message that does not fit is dropped. */
  readonly sendQueueBytesMax?: number;
  /** Per-peer bound on queued messages; a message that does not fit is dropped. */
  readonly sendQueueMsgsMax?: number;
  /**
   * Snapshot data per chunk, in bytes; a `snap` message with more data
   * streams in chunks. Below `frameBytesMax` (the rest of a frame holds the
   * chunk's metadata). Default 1 MiB.
   */
  readonly snapshotChunkBytes?: number;
  /**
   * Largest snapshot data sent or accepted, in bytes (default 1 GiB). A
   * larger snapshot is dropped by the sender and closes the connection at
   * the receiver.
   */
  readonly snapshotBytesMax?: number;
  /** Most snapshots being reassembled at once per inbound connection; default 2. */
  readonly snapshotPartialsMax?: number;
  /** Per-peer bound on snapshots waiting to stream; another is dropped. Default 2. */
  readonly snapshotSendsMax?: number;
  /**
   * A link that wrote nothing for this long sends a keepalive frame, in
   * milliseconds; 0 disables keepalives. When enabled, the transport keeps a
   * connection open to every peer of the address book. Default 250.
   */
  readonly keepaliveMs?: number;
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
  /** Envelope frames handed to sockets (every peer, ever). */
  readonly framesSent: number;
  /** Envelopes in those frames: `envelopesSent / framesSent` is the coalescing ratio. */
  readonly envelopesSent: number;
  /** Snapshot chunk frames handed to sockets. */
  readonly snapshotChunksSent: number;
  /** Chunked snapshots whose last chunk was handed to a socket. */
  readonly snapshotsSent: number;
  /** Chunked snapshots cut short by a lost connection (also counted in `dropped`). */
  readonly snapshotsAborted: number;
  /** Keepalive frames handed to sockets. */
  readonly keepalivesSent: number;
  /** Envelope frames received on valid connections. */
  readonly framesReceived: number;
  /** Snapshot chunk frames received and accepted. */
  readonly snapshotChunksReceived: number;
  /** Keepalive frames received. */
  readonly keepalivesReceived: number;
}

/** State of one inbound connection. */
interface Inbound {
  readonly socket: net.Socket;
  readonly remote: string;
  readonly reader: FrameReader;
  readonly assembler: SnapshotAssembler;
  hello: Hello | null;
}

/** What one inbound data event decoded. */
interface Decoded {
  readonly envelopes: Envelope[];
  /** Valid frames after the handshake, or the handshake itself. */
  readonly frames: number;
}

type Resolved = Required<Omit<TcpTransportOptions, 'addresses' | 'logger' | 'onPeerHeard'>> & {
  readonly logger: TransportLogger;
  readonly onPeerHeard: ((peer: NodeId) => void) | null;
};

function checkCount(value: number, min: number, max: number, name: string): void {
  assert(
    Number.isSafeInteger(value) && value >= min && value <= max,
    () => `${name} must be an integer in [${min}, ${max}]: ${value}`,
  );
}

function resolveOptions(o: TcpTransportOptions): Resolved {
  const resolved: Resolved = {
    ...o,
    logger: o.logger ?? SILENT_LOGGER,
    onPeerHeard: o.onPeerHeard ?? null,
    frameBytesMax: o.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT,
    frameEnvelopesMax: o.frameEnvelopesMax ?? FRAME_ENVELOPES_MAX_DEFAULT,
    snapshotChunkBytes: o.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT,
    snapshotBytesMax: o.snapshotBytesMax ?? SNAPSHOT_BYTES_MAX_DEFAULT,
    snapshotPartialsMax: o.snapshotPartialsMax ?? SNAPSHOT_PARTIALS_MAX_DEFAULT,
    snapshotSendsMax: o.snapshotSendsMax ?? SNAPSHOT_SENDS_MAX_DEFAULT,
    keepaliveMs: o.keepaliveMs ?? KEEPALIVE_MS_DEFAULT,
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
  checkCount(resolved.frameBytesMax, 1, FRAME_BYTES_MAX_LIMIT, 'frameBytesMax');
  checkCount(resolved.frameEnvelopesMax, 1, FRAME_ENVELOPES_MAX_LIMIT, 'frameEnvelopesMax');
  checkCount(resolved.snapshotChunkBytes, 1, resolved.frameBytesMax - 1, 'snapshotChunkBytes');
  checkCount(resolved.snapshotBytesMax, 0, bufferConstants.MAX_LENGTH, 'snapshotBytesMax');
  checkCount(resolved.snapshotPartialsMax, 1, Number.MAX_SAFE_INTEGER, 'snapshotPartialsMax');
  checkCount(resolved.snapshotSendsMax, 1, Number.MAX_SAFE_INTEGER, 'snapshotSendsMax');
  checkCount(resolved.keepaliveMs, 0, 2 ** 31 - 1, 'keepaliveMs'); // setTimeout's range
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
  private framesReceived = 0;
  private snapshotChunksReceived = 0;
  private keepalivesReceived = 0;
  private readonly counters: SendCounters = {
    framesSent: 0,
    envelopesSent: 0,
    snapshotChunksSent: 0,
    snapshotsSent: 0,
    snapshotsAborted: 0,
    keepalivesSent: 0,
  };
  /** Links with envelopes waiting for the end of this event-loop turn. */
  private readonly uncoalesced = new Set<PeerLink>();
  private coalesceImmediate: NodeJS.Immediate | null = null;
  /** Peers already reported to `onPeerHeard` during this event-loop turn. */
  private readonly heardThisTurn = new Set<NodeId>();
  private heardImmediate: NodeJS.Immediate | null = null;

  constructor(options: TcpTransportOptions) {
    this.opts = resolveOptions(options);
    this.addresses = new Map(options.addresses ?? []);
    this.server = net.createServer((socket) => this.accept(socket));
    this.openKeepaliveLinks();
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
   * With keepalives on, a link (and its connection) is opened to every
   * listed peer other than this node.
   */
  setAddressBook(addresses: ReadonlyMap<NodeId, PeerAddress>): void {
    this.addresses = new Map(addresses);
    for (const [peer, link] of this.links) {
      const address = this.addresses.get(peer);
      if (address === undefined) {
        link.close();
        this.links.delete(peer);
        this.uncoalesced.delete(link);
      } else {
        link.setAddress(address);
      }
    }
    this.openKeepaliveLinks();
  }

  /**
   * Queues `msg` for delivery to `to` in `range`. Never throws for network
   * problems or limits: a message that cannot be queued (queue full, unknown
   * peer, larger than `frameBytesMax` or, for a snapshot, `snapshotBytesMax`,
   * too many snapshots waiting, transport closed) is dropped and counted in
   * `stats().dropped[to]`. Requires `msg.to === to`.
   *
   * A `snap` message whose data exceeds `snapshotChunkBytes` streams in
   * chunks; every other message waits for the end of the event-loop turn and
   * leaves coalesced with the others sent to `to` in that turn.
   */
  send(to: NodeId, range: RangeId, msg: Message): void {
    assert(msg.to === to, () => `message addressed to ${msg.to} sent to ${to}`);
    const link = this.linkFor(to);
    if (link === null) return this.countDrop(to);
    if (msg.type === 'snap') {
      const { length } = msg.snapshot.data;
      if (length > this.opts.snapshotBytesMax) {
        this.opts.logger.warn(
          { peer: to, code: 'REQUEST_TOO_LARGE', bytes: length, limit: this.opts.snapshotBytesMax },
          'dropping snapshot: larger than snapshotBytesMax',
        );
        return this.countDrop(to);
      }
      if (length > this.opts.snapshotChunkBytes) {
        if (!link.enqueueSnapshot(range, msg)) this.countDrop(to);
        return;
      }
    }
    const payload = this.encode(to, { range, msg });
    if (payload === null || !link.enqueueEnvelope(payload)) return this.countDrop(to);
    this.scheduleCoalesce(link);
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
      ...this.counters,
      framesReceived: this.framesReceived,
      snapshotChunksReceived: this.snapshotChunksReceived,
      keepalivesReceived: this.keepalivesReceived,
    };
  }

  /** Stops listening, closes every connection and cancels every timer. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.uncoalesced.clear();
    if (this.coalesceImmediate !== null) clearImmediate(this.coalesceImmediate);
    this.coalesceImmediate = null;
    if (this.heardImmediate !== null) clearImmediate(this.heardImmediate);
    this.heardImmediate = null;
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
    const link = new PeerLink(address, {
      ...this.opts,
      self: this.opts.nodeId,
      peer,
      counters: this.counters,
      countDrop: () => this.countDrop(peer),
    });
    this.links.set(peer, link);
    return link;
  }

  /** With keepalives on, every peer of the address book gets a link now, not on first send. */
  private openKeepaliveLinks(): void {
    if (this.opts.keepaliveMs === 0) return;
    for (const peer of this.addresses.keys()) {
      if (peer !== this.opts.nodeId) this.linkFor(peer);
    }
  }

  /**
   * Coalesces at the end of this event-loop turn. setImmediate rather than
   * queueMicrotask: the ranges of a node handle their Ready in promise
   * continuations (persistence is awaited), and a microtask queued by the
   * first send would run before later continuations of the same turn had
   * sent, splitting the batch. setImmediate runs once the current callback
   * and all its microtasks are done, in the same loop iteration (no timer
   * granularity as with setTimeout), so it adds no more than the rest of
   * this iteration to a message's latency.
   */
  private scheduleCoalesce(link: PeerLink): void {
    this.uncoalesced.add(link);
    if (this.coalesceImmediate !== null) return;
    this.coalesceImmediate = setImmediate(() => {
      this.coalesceImmediate = null;
      const links = [...this.uncoalesced];
      this.uncoalesced.clear();
      for (const l of links) l.coalesce();
    });
  }

  /** Encodes one envelope's payload; null (logged) if it exceeds `frameBytesMax`. */
  private encode(peer: NodeId, envelope: Envelope): Uint8Array | null {
    const payload = encodeEnvelopePayload(envelope);
    if (payload.length <= this.opts.frameBytesMax) return payload;
    const err = new TesseraError('REQUEST_TOO_LARGE', 'frame payload exceeds frameBytesMax', {
      limit: this.opts.frameBytesMax,
      actual: payload.length,
    });
    this.opts.logger.warn({ peer, code: err.code, err }, 'dropping message: frame too large');
    return null;
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
      assembler: new SnapshotAssembler(this.opts),
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
    socket.on('close', () => {
      // Partial snapshots die with their connection; the sender drops their rest.
      conn.assembler.clear();
      this.inbound.delete(conn);
    });
  }

  private onData(conn: Inbound, chunk: Uint8Array): void {
    if (conn.socket.destroyed) return;
    let decoded: Decoded;
    try {
      decoded = this.decode(conn, chunk);
    } catch (err) {
      if (!(err instanceof TesseraError)) throw err;
      this.rejectBadFrame(conn, err);
      return;
    }
    if (decoded.frames > 0 && conn.hello !== null) this.notePeerHeard(conn.hello.node);
    for (const { range, msg } of decoded.envelopes) {
      this.received++;
      this.opts.onMessage(range, msg);
    }
  }

  /** Decodes a chunk's frames: the handshake first, then frames addressed to this node. */
  private decode(conn: Inbound, chunk: Uint8Array): Decoded {
    const envelopes: Envelope[] = [];
    let frames = 0;
    for (const payload of conn.reader.push(chunk)) {
      if (conn.hello === null) {
        if (!this.acceptHello(conn, decodeHello(payload))) return { envelopes: [], frames: 0 };
        frames++;
        continue;
      }
      const frame = decodePeerFrame(payload);
      frames++;
      switch (frame.kind) {
        case 'envelopes':
          this.framesReceived++;
          for (const envelope of frame.envelopes) {
            this.checkAddressing(conn.hello, envelope.msg);
            envelopes.push(envelope);
          }
          break;
        case 'snapshot-chunk': {
          if (frame.chunk.head !== null) this.checkAddressing(conn.hello, frame.chunk.head.msg);
          const complete = conn.assembler.push(frame.chunk);
          this.snapshotChunksReceived++;
          if (complete !== null) envelopes.push(complete);
          break;
        }
        case 'keepalive':
          this.keepalivesReceived++;
          break;
        default:
          assertNever(frame, 'peer frame');
      }
    }
    return { envelopes, frames };
  }

  /** Reports `peer` to `onPeerHeard`, at most once per peer per event-loop turn. */
  private notePeerHeard(peer: NodeId): void {
    const onPeerHeard = this.opts.onPeerHeard;
    if (onPeerHeard === null || this.heardThisTurn.has(peer)) return;
    this.heardThisTurn.add(peer);
    this.heardImmediate ??= setImmediate(() => {
      this.heardImmediate = null;
      this.heardThisTurn.clear();
    });
    onPeerHeard(peer);
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
    conn.assembler.clear();
    conn.socket.destroy();
  }
}
