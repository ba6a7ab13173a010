/**
 * Prometheus metrics of one node (prom-client), served at `GET /metrics`.
 * Raft and transport figures are read when scraped; request counts and log
 * sync latency are recorded as they happen. Each node has its own registry.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TransportStats } from '../transport/tcp-transport.ts';
import type { NodeStatus, RangeStatus } from '../api/http-api.ts';

/** What the metrics read at scrape time. */
export interface MetricsSource {
  status(): NodeStatus;
  transportStats(): TransportStats | null;
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'code'>;
  private readonly logSync: Histogram;
  private readonly gcRemovedTotal: Counter;

  constructor(source: MetricsSource) {
    const r = this.registry;
    // Raft figures per hosted range, labelled with the range id.
    const perRange = (name: string, help: string, pick: (s: RangeStatus) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['range'],
        registers: [r],
        collect() {
          this.reset();
          for (const rs of source.status().ranges) this.set({ range: String(rs.id) }, pick(rs));
        },
      });
    };
    perRange('tessera_raft_term', 'Current Raft term of the range.', (s) => s.term);
    perRange('tessera_raft_commit_index', 'Highest log index known committed.', (s) => s.commit);
    perRange('tessera_raft_applied_index', 'Highest log index applied.', (s) => s.applied);
    perRange('tessera_raft_last_index', "Last index of the range's Raft log.", (s) => s.lastIndex);
    perRange('tessera_raft_is_leader', '1 if this node leads the range.', (s) =>
      s.role === 'leader' ? 1 : 0,
    );
    new Gauge({
      name: 'tessera_ranges_quiet',
      help: 'Hosted ranges that are quiet (idle: no heartbeats, no election ticking).',
      registers: [r],
      collect() {
        this.set(source.status().ranges.filter((rs) => rs.quiet).length);
      },
    });
    new Gauge({
      name: 'tessera_ranges_hosted',
      help: 'Ranges this node hosts a replica of.',
      registers: [r],
      collect() {
        this.set(source.status().ranges.length);
      },
    });
    const fromTransport = (
      name: string,
      help: string,
      pick: (t: TransportStats) => number,
    ): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          const t = source.transportStats();
          if (t !== null) this.set(pick(t));
        },
      });
    };
    const sum = (o: Readonly<Record<number, number>>): number =>
      Object.values(o).reduce((a, b) => a + b, 0);
    fromTransport(
      'tessera_transport_dropped_messages',
      'Peer messages dropped (queue full, no address, too large).',
      (t) => sum(t.dropped),
    );
    fromTransport('tessera_transport_queued_bytes', 'Bytes waiting in peer send queues.', (t) =>
      sum(t.queuedBytes),
    );
    fromTransport(
      'tessera_transport_bad_frames',
      'Inbound connections closed for a bad frame.',
      (t) => t.badFrames,
    );
    fromTransport(
      'tessera_transport_frames_sent',
      'Frames sent to peers (each carries one or more coalesced messages).',
      (t) => t.framesSent,
    );
    fromTransport(
      'tessera_transport_envelopes_sent',
      'Peer messages sent, over all frames.',
      (t) => t.envelopesSent,
    );
    fromTransport(
      'tessera_transport_received_messages',
      'Peer messages received.',
      (t) => t.received,
    );
    this.gcRemovedTotal = new Counter({
      name: 'tessera_table_gc_removed_records_total',
      help: 'Table records (old versions, expired cells, delete markers) removed by garbage collection.',
      registers: [r],
    });
    this.requests = new Counter({
      name: 'tessera_http_requests_total',
      help: 'HTTP API requests by method, route and status code.',
      labelNames: ['method', 'route', 'code'],
      registers: [r],
    });
    this.logSync = new Histogram({
      name: 'tessera_log_sync_seconds',
      help: 'Duration of one log engine sync (write and fsync).',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: [r],
    });
  }

  /** Counts one answered HTTP request. */
  request(method: string, route: string, code: number): void {
    this.requests.inc({ method, route, code: String(code) });
  }

  /** Records one log sync of `seconds`. */
  /** A garbage-collection command removed `n` records. */
  gcRemoved(n: number): void {
    this.gcRemovedTotal.inc(n);
  }

  logSyncDone(seconds: number): void {
    this.logSync.observe(seconds);
  }
}
