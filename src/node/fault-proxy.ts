/**
 * A TCP forwarder for fault injection: it listens on its own loopback port
 * and forwards every connection, byte for byte, to one target address. The
 * chaos tester (cli/chaos.ts) puts one proxy on every directed Raft link
 * i→j (node i is told that peer j lives at the proxy), so that cutting the
 * proxy partitions exactly that direction.
 *
 * While cut, the proxy destroys every connection it carries and resets new
 * ones as soon as they are accepted: the sender sees a dead link and must
 * reconnect after it is healed, as after a real network partition. Nothing
 * is ever corrupted or reordered within a connection.
 */
import net from 'node:net';
import { assert } from '../core/assert.ts';

/** Where a proxy forwards to. */
export interface ProxyTarget {
  readonly host: string;
  readonly port: number;
}

/** Bound on connections carried at once by one proxy; more are refused. */
export const PROXY_CONNECTIONS_MAX = 64;

/**
 * One directed, cuttable link. Lifecycle: {@link FaultProxy.listen} once,
 * then any number of {@link FaultProxy.cut} / {@link FaultProxy.heal},
 * then {@link FaultProxy.close}.
 */
export class FaultProxy {
  private readonly server: net.Server;
  /** Each live pair (accepted socket, upstream socket). */
  private readonly pairs = new Set<readonly [net.Socket, net.Socket]>();
  private isCut = false;
  private listening = false;

  constructor(private readonly target: ProxyTarget) {
    this.server = net.createServer((inbound) => this.accept(inbound));
    this.server.on('error', () => {
      // Accept errors (e.g. EMFILE) only lose that connection; the peer retries.
    });
  }

  /** Starts listening on `host` (a free port unless `port` is given); resolves to the port. */
  async listen(host = '127.0.0.1', port = 0): Promise<number> {
    assert(!this.listening, 'FaultProxy.listen called twice');
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.listening = true;
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Cuts the link: destroys the connections it carries and resets new ones until {@link heal}. */
  cut(): void {
    this.isCut = true;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Heals the link: new connections are forwarded again. */
  heal(): void {
    this.isCut = false;
  }

  /** Number of connections carried now. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Stops listening and destroys every connection. Idempotent. */
  async close(): Promise<void> {
    this.cut();
    if (!this.listening) return;
    this.listening = false;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(inbound: net.Socket): void {
    inbound.on('error', () => {});
    if (this.isCut || !this.listening || this.pairs.size >= PROXY_CONNECTIONS_MAX) {
      inbound.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    upstream.on('error', () => {});
    const pair = [inbound, upstream] as const;
    this.pairs.add(pair);
    const drop = (): void => {
      if (!this.pairs.delete(pair)) return;
      inbound.destroy();
      upstream.destroy();
    };
    // Either side closing or failing closes the other: the link behaves like one socket.
    inbound.once('close', drop);
    upstream.once('close', drop);
    inbound.pipe(upstream);
    upstream.pipe(inbound);
  }
}
