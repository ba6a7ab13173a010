/**
 * Options of one simulated run, and the fault mix a seed picks.
 */
import type { CanaryName } from '../raft/canaries.ts';
import type { Rng } from '../core/rng.ts';
import { SESSION_IDLE_MS } from '../kv/session-table.ts';
import { OP_DEADLINE_MS } from './client.ts';
import { TABLE_ROWS_MAX } from './table-workload.ts';

/** The longest a `pause` fault stops a node, in virtual ms. */
export const PAUSE_MAX_MS = 2000;

/** Fault families the simulator can inject; `all` switches every one on. */
export const FAULT_KINDS = [
  'loss',
  'delay',
  'dup',
  'partition',
  'crash',
  'pause',
  'clock',
  'membership',
  'snapshot',
  'disk',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export function parseFaults(spec: string): Set<FaultKind> {
  const out = new Set<FaultKind>();
  for (const raw of spec.split(',')) {
    const name = raw.trim();
    if (name === '' || name === 'none') continue;
    if (name === 'all') {
      for (const k of FAULT_KINDS) out.add(k);
      continue;
    }
    if (!(FAULT_KINDS as readonly string[]).includes(name)) {
      throw new Error(`unknown fault '${name}' (known: ${FAULT_KINDS.join(', ')}, all, none)`);
    }
    out.add(name as FaultKind);
  }
  return out;
}

export interface SimOptions {
  readonly seed: number;
  /** Initial voters, 3 to 7. */
  readonly nodes: number;
  readonly faults: ReadonlySet<FaultKind>;
  readonly bugs: ReadonlySet<CanaryName>;
  /** Client operations in the run (safety and liveness phases together). */
  readonly ops: number;
  /** Collect a readable trace of the run. */
  readonly trace: boolean;
  /**
   * Forces the session idle window, in virtual ms, with clients moving to
   * new sessions every few operations (tests: a window below the retry
   * horizon must break exactly-once visibly). Default: the seed's mix.
   */
  readonly sessionIdleMs?: number;
}

export const DEFAULT_OPS = 200;

/**
 * The intensity of each fault, drawn from the seed: one seed picks one mix
 * (some gentle, some harsh), so many seeds cover many combinations.
 */
export interface FaultMix {
  readonly lossRate: number;
  readonly dupRate: number;
  /** Base one-way latency range in ms. */
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
  /** Probability that a message takes a long detour (reordering). */
  readonly spikeRate: number;
  readonly spikeMaxMs: number;
  /** Mean ms between nemesis actions; each enabled family gets a weight. */
  readonly nemesisIntervalMs: number;
  readonly weights: Readonly<
    Record<'partition' | 'crash' | 'pause' | 'clock' | 'membership' | 'heal', number>
  >;
  /** Clock-rate drift bound, as a fraction (0.05 = 5%). */
  readonly driftBound: number;
  /** Applied entries between snapshots. */
  readonly snapshotEveryEntries: number;
  /** Disk write latency range in ms. */
  readonly persistMinMs: number;
  readonly persistMaxMs: number;
  /** Reads use the leader lease instead of a ReadIndex round. */
  readonly leaseReads: boolean;
  /** Payload bytes per append message (1 = one entry per message). */
  readonly msgBytesMax: number;
  /**
   * Virtual ms per Raft tick. Longer ticks stretch elections and check-quorum
   * rounds relative to message latency, widening the windows in which a
   * deposed leader still believes it leads.
   */
  readonly tickMs: number;
  /** Partitions cut clients off from the nodes their home node cannot reach. */
  readonly clientsPartitioned: boolean;
  /** Probability that a read goes to a random node rather than the presumed leader. */
  readonly spreadReads: number;
  /** Concurrent clients. */
  readonly clients: number;
  /** Disk faults: torn writes at crashes, crashes in the middle of fsync, bit flips on read. */
  readonly diskFaults: boolean;
  /** Probability that one file read returns one flipped bit (with disk faults). */
  readonly readBitFlipRate: number;
  /** Log segment size: small segments exercise rolling and deletion. */
  readonly segmentBytesMax: number;
  /** Fraction of operations that are reads. */
  readonly readRatio: number;
  /**
   * The state machine's session idle window, in virtual ms: the production
   * default, or in a share of seeds a window short enough for sessions to
   * expire during the run (see {@link shortSessionIdleMs}).
   */
  readonly sessionIdleMs: number;
  /** Operations of a client per session before it opens a new one (0 = never). */
  readonly sessionOpsMax: number;
  /**
   * Quiescence (`RaftConfig.quiesce`) is on in this run. Such runs also run
   * node liveness (pings between every node pair, through the simulated
   * network), give clients idle gaps so that the group can go quiet under
   * faults, and end with a quiet-leader crash (see docs/simulator.md).
   * Runs without it use no randomness for any of this.
   */
  readonly quiesce: boolean;
  /** Ticks between two liveness pings from a node to each peer (quiescence runs). */
  readonly pingIntervalTicks: number;
  /** Ticks of silence after which node liveness deems a peer down (quiescence runs). */
  readonly livenessTimeoutTicks: number;
  /** Clients pause for `idleGapMs` at the start of every `idleEveryMs` of the safety phase (0: never). */
  readonly idleEveryMs: number;
  readonly idleGapMs: number;
  /**
   * Table workload (src/sim/table-workload.ts): the probability that a
   * client operation goes to a row of the simulated table instead of a
   * key-value key. 0 in key-value-only runs, which then use no randomness
   * for tables at all.
   */
  readonly tableShare: number;
  /** Rows of the simulated table the clients use, 1..TABLE_ROWS_MAX (0 without tables). */
  readonly tableRows: number;
  /** The simulated table's maxVersions (0 without tables). */
  readonly tableMaxVersions: number;
}

/**
 * The shortest idle window that keeps exactly-once sound in a run: longer
 * than any gap between a session's last use and a late proposal of its last
 * command. That gap is at most the client's operation deadline (its last
 * attempt), plus the message's one-way latency, plus a pause of the node
 * that received it (it proposes on resume). A proposal is stamped by the
 * virtual clock, which never goes back, so the log clock at its apply is its
 * own stamp.
 */
export function retryHorizonMs(
  mix: Pick<FaultMix, 'tickMs' | 'delayMaxMs' | 'spikeMaxMs'>,
): number {
  return OP_DEADLINE_MS * (mix.tickMs / 10) + mix.delayMaxMs + mix.spikeMaxMs + PAUSE_MAX_MS;
}

/** A short idle window: between 1.2 and 2 retry horizons, in whole ms. */
function shortSessionIdleMs(
  mix: Pick<FaultMix, 'tickMs' | 'delayMaxMs' | 'spikeMaxMs'>,
  rng: Rng,
): number {
  return Math.ceil((retryHorizonMs(mix) * rng.int(12, 20)) / 10);
}

export function pickFaultMix(faults: ReadonlySet<FaultKind>, rng: Rng): FaultMix {
  const on = (k: FaultKind): boolean => faults.has(k);
  const pickDelay = on('delay');
  const delayMaxMs = pickDelay ? rng.int(2, 20) : 2;
  const w = (k: FaultKind, lo: number, hi: number): number => (on(k) ? rng.int(lo, hi) : 0);
  const weights = {
    partition: w('partition', 1, 6),
    crash: w('crash', 1, 6),
    pause: w('pause', 1, 4),
    clock: w('clock', 1, 3),
    membership: w('membership', 1, 3),
    heal: 0,
  };
  weights.heal = weights.partition > 0 ? rng.int(1, 4) : 0;
  const mix: Omit<FaultMix, QuiescenceField | TableField | 'sessionIdleMs' | 'sessionOpsMax'> = {
    lossRate: on('loss') ? [0.01, 0.05, 0.1, 0.2][rng.int(0, 3)]! : 0,
    dupRate: on('dup') ? [0.01, 0.05, 0.1][rng.int(0, 2)]! : 0,
    delayMinMs: 1,
    delayMaxMs,
    spikeRate: pickDelay ? [0, 0.01, 0.05][rng.int(0, 2)]! : 0,
    spikeMaxMs: pickDelay ? rng.int(50, 400) : 0,
    nemesisIntervalMs: rng.int(50, 400),
    weights,
    driftBound: on('clock') ? 0.05 : 0,
    snapshotEveryEntries: on('snapshot') ? rng.int(5, 40) : 200,
    persistMinMs: 0.1,
    persistMaxMs: rng.int(1, 5),
    leaseReads: rng.chance(0.5),
    msgBytesMax: [1, 256, 4096][rng.int(0, 2)]!,
    tickMs: [10, 10, 25, 50][rng.int(0, 3)]!,
    clientsPartitioned: rng.chance(0.5),
    spreadReads: [0.2, 0.5, 0.8][rng.int(0, 2)]!,
    clients: rng.int(4, 10),
    diskFaults: on('disk'),
    readBitFlipRate: on('disk') ? [0.01, 0.05, 0.2][rng.int(0, 2)]! : 0,
    segmentBytesMax: [4 << 10, 64 << 10, 1 << 20][rng.int(0, 2)]!,
    readRatio: [0.2, 0.4, 0.6][rng.int(0, 2)]!,
  };
  // Drawn last, so that the fields above stay what they were for each seed.
  // Half the seeds expire sessions: clients move to new sessions now and then
  // (as restarted client processes do) and the old ones go idle.
  const shortSessions = rng.chance(0.5);
  return {
    ...mix,
    sessionIdleMs: shortSessions ? shortSessionIdleMs(mix, rng) : SESSION_IDLE_MS,
    sessionOpsMax: shortSessions ? rng.int(2, 10) : 0,
    ...pickQuiescence(rng, mix.tickMs),
    ...pickTableWorkload(rng),
  };
}

type TableField = 'tableShare' | 'tableRows' | 'tableMaxVersions';

/**
 * The table workload; drawn after everything else, so that the other
 * options stay what they were for each seed. Half the seeds run it: half
 * of their operations, or all of them, go to rows.
 */
function pickTableWorkload(rng: Rng): Pick<FaultMix, TableField> {
  if (!rng.chance(0.5)) return { tableShare: 0, tableRows: 0, tableMaxVersions: 0 };
  return {
    tableShare: [0.5, 1][rng.int(0, 1)]!,
    tableRows: rng.int(1, TABLE_ROWS_MAX),
    tableMaxVersions: rng.int(1, 3),
  };
}

type QuiescenceField =
  'quiesce' | 'pingIntervalTicks' | 'livenessTimeoutTicks' | 'idleEveryMs' | 'idleGapMs';

/** Quiescence options; drawn last, and only in runs that enable it, so other runs are unchanged. */
function pickQuiescence(rng: Rng, tickMs: number): Pick<FaultMix, QuiescenceField> {
  if (!rng.chance(0.5)) {
    return {
      quiesce: false,
      pingIntervalTicks: 0,
      livenessTimeoutTicks: 0,
      idleEveryMs: 0,
      idleGapMs: 0,
    };
  }
  const pingIntervalTicks = rng.int(2, 5);
  return {
    quiesce: true,
    pingIntervalTicks,
    livenessTimeoutTicks: pingIntervalTicks * rng.int(3, 5),
    idleEveryMs: tickMs * rng.int(100, 300),
    idleGapMs: tickMs * rng.int(20, 80),
  };
}
