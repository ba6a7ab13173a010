/**
 * `npm run sim:live`: one simulated 5-node cluster
 * under every fault, shown in the terminal at a pace a person can follow.
 *
 *   npm run sim:live -- [--seed S] [--speed F] [--fast] [--no-color]
 *
 * The seed (from --seed, or derived from the current time) is run to the end
 * first: a simulated run is a pure, synchronous function of its seed, so the
 * trace it produces is exactly what `npm run sim -- --seed S ... --trace`
 * prints. That trace is then played back over about 30 s of wall time
 * (`--speed 2` halves that, `--fast` prints without pacing), each line
 * labelled by kind (coloured when stdout is a colour terminal), with status
 * lines giving the leader, term, node health, network and operation counts
 * derived from the trace, and a summary per phase (faults, then heal and
 * liveness). The last line is
 *
 *   live-sim: seed=S ops=M unknown=U violations=V
 *
 * and the exit status is 0 if and only if V is 0. Nothing is read from stdin.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { DEFAULT_OPS, parseFaults } from '../sim/options.ts';
import type { FaultMix } from '../sim/options.ts';
import { runSimulation } from '../sim/simulation.ts';
import type { SimResult } from '../sim/simulation.ts';

const NODES = 5;
const FAULTS = 'all';
/** Default playback length in wall ms; --speed divides it. */
const PLAYBACK_MS = 30_000;
/**
 * Weight of virtual time versus line count in the pacing: 1 would be a
 * uniform time-lapse (bursts of lines flash by, quiet stretches crawl), 0 one
 * line at a steady rate. Half and half keeps both readable.
 */
const TIME_WEIGHT = 0.5;
/** About this many periodic status lines per run. */
const STATUS_LINES = 15;
/** The simulator's own cap on trace lines (TRACE_LINES_MAX in simulation.ts). */
const SIM_TRACE_CAP = 20_000;

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run sim:live -- [--seed S] [--speed F] [--fast] [--no-color]\n` +
      `  --seed S    run seed S (default: derived from the current time)\n` +
      `  --speed F   playback speed factor (default 1: about ${PLAYBACK_MS / 1000} s; 2 = twice as fast)\n` +
      `  --fast      print the whole run at once, without pacing\n` +
      `  --no-color  never colour the output (it is only coloured on a colour terminal)\n`,
  );
  process.exit(2);
}

function replayCommand(seed: number): string {
  return `npm run sim -- --seed ${seed} --nodes ${NODES} --faults ${FAULTS} --trace`;
}

// -----------------------------------------------------------------------------
// Output: labels, colours, a sticky status bar on terminals

type Kind =
  | 'leader'
  | 'vote'
  | 'role'
  | 'op'
  | 'op-fail'
  | 'op-unknown'
  | 'crash'
  | 'restart'
  | 'pause'
  | 'resume'
  | 'partition'
  | 'healed'
  | 'clock'
  | 'member'
  | 'conf'
  | 'snapshot'
  | 'heal'
  | 'liveness'
  | 'other';

const LABELS: Record<Kind, string> = {
  leader: 'LEADER',
  vote: 'VOTE',
  role: 'ROLE',
  op: 'OP',
  'op-fail': 'OP',
  'op-unknown': 'OP?',
  crash: 'CRASH',
  restart: 'RESTART',
  pause: 'PAUSE',
  resume: 'RESUME',
  partition: 'PARTN',
  healed: 'UNPARTN',
  clock: 'CLOCK',
  member: 'MEMBER',
  conf: 'CONF',
  snapshot: 'SNAP',
  heal: 'HEAL',
  liveness: 'LIVE',
  other: '',
};

const SGR = {
  reset: '\x1b[0m',
  bold: '\x1b[1m',
  dim: '\x1b[2m',
  red: '\x1b[31m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  blue: '\x1b[34m',
  magenta: '\x1b[35m',
  cyan: '\x1b[36m',
  inverse: '\x1b[7m',
} as const;

const STYLES: Record<Kind, string> = {
  leader: SGR.bold + SGR.green,
  vote: SGR.yellow,
  role: SGR.dim,
  op: '',
  'op-fail': SGR.dim,
  'op-unknown': SGR.magenta,
  crash: SGR.bold + SGR.red,
  restart: SGR.green,
  pause: SGR.yellow,
  resume: SGR.green,
  partition: SGR.red,
  healed: SGR.cyan,
  clock: SGR.blue,
  member: SGR.bold + SGR.cyan,
  conf: SGR.cyan + SGR.dim,
  snapshot: SGR.blue,
  heal: SGR.bold + SGR.inverse + SGR.cyan,
  liveness: SGR.bold + SGR.green,
  other: '',
};

class Out {
  private buf: string[] = [];
  private bar = '';

  constructor(
    readonly color: boolean,
    /** Keep a status bar on the last terminal line (TTY only). */
    private readonly sticky: boolean,
  ) {}

  paint(style: string, text: string): string {
    return this.color && style !== '' ? `${style}${text}${SGR.reset}` : text;
  }

  line(text: string): void {
    this.buf.push(text);
    if (this.buf.length >= 256) this.flush();
  }

  status(text: string): void {
    this.bar = text;
  }

  flush(): void {
    if (this.buf.length === 0 && !this.sticky) return;
    let s = this.sticky ? '\r\x1b[2K' : '';
    if (this.buf.length > 0) s += `${this.buf.join('\n')}\n`;
    if (this.sticky && this.bar !== '') {
      // One terminal line at most, or clearing it before the next write would leave debris.
      const width = Math.max(10, (process.stdout.columns ?? 80) - 1);
      s += this.paint(SGR.inverse, this.bar.length > width ? this.bar.slice(0, width) : this.bar);
    }
    this.buf = [];
    process.stdout.write(s);
  }

  /** Flushes and removes the status bar. */
  close(): void {
    this.flush();
    if (this.sticky) process.stdout.write('\r\x1b[2K');
  }
}

// -----------------------------------------------------------------------------
// What the trace says about the cluster

interface NodeView {
  role: string;
  term: number;
}

interface PhaseCounts {
  elections: number;
  crashes: number;
  restarts: number;
  pauses: number;
  partitions: number;
  clock: number;
  membership: number;
  snapshots: number;
  ok: number;
  fail: number;
  unknown: number;
}

const zeroCounts = (): PhaseCounts => ({
  elections: 0,
  crashes: 0,
  restarts: 0,
  pauses: 0,
  partitions: 0,
  clock: 0,
  membership: 0,
  snapshots: 0,
  ok: 0,
  fail: 0,
  unknown: 0,
});

const ROLE_RE = /^n(\d+) (leader|follower|candidate|pre-candidate) term=(\d+) leader=(\d+)/;
const OP_RE = / (ok|fail|unknown) \[[^\]]*\]$/;
const CONF_RE =
  /^n\d+ applied conf change at (\d+): voters=\[([\d,]*)\] outgoing=\[([\d,]*)\] learners=\[([\d,]*)\]/;
const NEMESIS_NODE_RE = /^nemesis: (crash|restart|pause|resume) n(\d+)/;

const plural = (n: number, what: string): string =>
  `${n} ${n === 1 ? what : what.endsWith('sh') ? `${what}es` : `${what}s`}`;

const ids = (list: string): number[] => (list === '' ? [] : list.split(',').map(Number));

class ClusterView {
  readonly nodes = new Map<number, NodeView>();
  readonly down = new Set<number>();
  readonly paused = new Set<number>();
  voters: number[];
  outgoing: number[] = [];
  learners: number[] = [];
  private confIndex = -1;
  network = 'clean';
  phase: 'safety' | 'liveness' = 'safety';
  maxTerm = 0;
  phaseCounts = zeroCounts();
  readonly total = zeroCounts();
  /** The leader as of the previous line, for "was ..." annotations. */
  private lastLeader: { id: number; term: number } | undefined;

  constructor(nodes: number) {
    this.voters = Array.from({ length: nodes }, (_, i) => i + 1);
  }

  /**
   * The leader of the newest term seen, if it is running. A leader of an older
   * term (say, just resumed from a pause) is stale: it steps down as soon as
   * it hears from the others.
   */
  leader(): { id: number; term: number } | undefined {
    for (const [id, n] of this.nodes) {
      if (n.role !== 'leader' || n.term !== this.maxTerm) continue;
      if (this.down.has(id) || this.paused.has(id)) continue;
      return { id, term: n.term };
    }
    return undefined;
  }

  members(): number[] {
    return [...new Set([...this.voters, ...this.outgoing, ...this.learners])].sort((a, b) => a - b);
  }

  private count(k: keyof PhaseCounts): void {
    this.phaseCounts[k]++;
    this.total[k]++;
  }

  /** Updates the view from one trace line; returns its kind and an annotation. */
  apply(text: string): { kind: Kind; note: string } {
    let m = ROLE_RE.exec(text);
    if (m !== null) {
      const id = Number(m[1]);
      const role = m[2]!;
      const t = Number(m[3]);
      this.nodes.set(id, { role, term: t });
      this.maxTerm = Math.max(this.maxTerm, t);
      if (role !== 'leader') return { kind: role === 'follower' ? 'role' : 'vote', note: '' };
      this.count('elections');
      const was = this.lastLeader;
      this.lastLeader = { id, term: t };
      const prev = was === undefined ? 'none' : `n${was.id} term ${was.term}`;
      return { kind: 'leader', note: `new leader n${id} for term ${t} (previous: ${prev})` };
    }
    m = OP_RE.exec(text);
    if (m !== null && text.startsWith('client ')) {
      const outcome = m[1] as 'ok' | 'fail' | 'unknown';
      this.count(outcome);
      const kind = outcome === 'ok' ? 'op' : outcome === 'fail' ? 'op-fail' : 'op-unknown';
      return { kind, note: outcome === 'unknown' ? 'timed out: outcome unknown' : '' };
    }
    m = CONF_RE.exec(text);
    if (m !== null) {
      const index = Number(m[1]);
      if (index > this.confIndex) {
        this.confIndex = index;
        this.voters = ids(m[2]!);
        this.outgoing = ids(m[3]!);
        this.learners = ids(m[4]!);
      }
      return { kind: 'conf', note: '' };
    }
    m = NEMESIS_NODE_RE.exec(text);
    if (m !== null) {
      const id = Number(m[2]);
      switch (m[1]) {
        case 'crash':
          this.down.add(id);
          this.paused.delete(id);
          this.nodes.delete(id);
          this.count('crashes');
          return { kind: 'crash', note: '' };
        case 'restart':
          this.down.delete(id);
          this.count('restarts');
          return { kind: 'restart', note: '' };
        case 'pause':
          this.paused.add(id);
          this.count('pauses');
          return { kind: 'pause', note: '' };
        default:
          this.paused.delete(id);
          return { kind: 'resume', note: '' };
      }
    }
    if (text === 'nemesis: partition healed') {
      this.network = 'clean';
      return { kind: 'healed', note: '' };
    }
    if (text.startsWith('nemesis: partition ')) {
      this.network = text.slice('nemesis: partition '.length);
      this.count('partitions');
      return { kind: 'partition', note: '' };
    }
    if (text.startsWith('nemesis: membership ')) {
      this.count('membership');
      return { kind: 'member', note: '' };
    }
    if (/^nemesis: n\d+ clock /.test(text)) {
      this.count('clock');
      return { kind: 'clock', note: '' };
    }
    if (/^n\d+ restored snapshot/.test(text)) {
      this.count('snapshots');
      return { kind: 'snapshot', note: '' };
    }
    if (text.startsWith('heal:')) {
      this.phase = 'liveness';
      this.down.clear();
      this.paused.clear();
      this.network = 'clean';
      return { kind: 'heal', note: '' };
    }
    if (text.startsWith('liveness:')) return { kind: 'liveness', note: '' };
    return { kind: 'other', note: '' };
  }

  /** Call after apply(): remembers the leader for the next "previous" note. */
  settle(): void {
    const l = this.leader();
    if (l !== undefined) this.lastLeader = l;
  }

  status(tMs: number): string {
    const l = this.leader();
    const leader =
      l === undefined ? `no leader (term ${this.maxTerm})` : `leader n${l.id} term ${l.term}`;
    const members = this.members();
    const down = members.filter((id) => this.down.has(id));
    const paused = members.filter((id) => this.paused.has(id));
    const up = members.length - down.length - paused.length;
    let health = `${up}/${members.length} up`;
    if (down.length > 0) health += `, down ${down.map((id) => `n${id}`).join(' ')}`;
    if (paused.length > 0) health += `, paused ${paused.map((id) => `n${id}`).join(' ')}`;
    let conf = `voters [${this.voters}]`;
    if (this.outgoing.length > 0) conf += ` joint [${this.outgoing}]`;
    if (this.learners.length > 0) conf += ` learners [${this.learners}]`;
    const t = this.total;
    return (
      `t=${(tMs / 1000).toFixed(1)}s ${this.phase} | ${leader} | ${health} | ${conf} | ` +
      `net: ${this.network} | ops ${t.ok} ok ${t.fail} fail ${t.unknown} unknown`
    );
  }

  phaseSummary(): string {
    const c = this.phaseCounts;
    const items: [number, string][] = [
      [c.elections, 'leader election'],
      [c.crashes, 'crash'],
      [c.restarts, 'restart'],
      [c.pauses, 'pause'],
      [c.partitions, 'partition'],
      [c.membership, 'membership change'],
      [c.clock, 'clock fault'],
      [c.snapshots, 'snapshot install'],
    ];
    const events = items.filter(([n]) => n > 0).map(([n, what]) => plural(n, what));
    return (
      `${events.length === 0 ? 'no elections or faults' : events.join(', ')}; ` +
      `ops ${c.ok} ok, ${c.fail} fail, ${c.unknown} unknown`
    );
  }
}

// -----------------------------------------------------------------------------
// Playback

interface TraceLine {
  /** Virtual ms. */
  readonly t: number;
  /** The original line, timestamp included. */
  readonly raw: string;
  /** The line without its timestamp. */
  readonly text: string;
}

const LINE_RE = /^\[\s*(\d+(?:\.\d+)?)ms\] (.*)$/s;

function parseTrace(trace: readonly string[]): TraceLine[] {
  const out: TraceLine[] = [];
  let last = 0;
  for (const raw of trace) {
    const m = LINE_RE.exec(raw);
    if (m === null) {
      out.push({ t: last, raw, text: raw });
      continue;
    }
    last = Number(m[1]);
    out.push({ t: last, raw, text: m[2]! });
  }
  return out;
}

/** The smallest round interval giving at most about `count` status lines over `spanMs`. */
function statusInterval(spanMs: number, count: number): number {
  const steps = [100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 30_000, 60_000];
  for (const s of steps) if (spanMs / s <= count) return s;
  return steps[steps.length - 1]!;
}

function describeMix(header: string): string {
  const at = header.indexOf(' mix=');
  if (at < 0) return header;
  let mix: FaultMix;
  try {
    mix = JSON.parse(header.slice(at + ' mix='.length)) as FaultMix;
  } catch {
    return header;
  }
  const pct = (x: number): string => `${+(x * 100).toFixed(1)}%`;
  const w = Object.entries(mix.weights)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return (
    `loss ${pct(mix.lossRate)}, duplication ${pct(mix.dupRate)}, latency ${mix.delayMinMs}-${mix.delayMaxMs} ms` +
    (mix.spikeRate > 0 ? ` (${pct(mix.spikeRate)} delayed up to ${mix.spikeMaxMs} ms)` : '') +
    `; nemesis every ~${mix.nemesisIntervalMs} ms, weights: ${w === '' ? 'none' : w}` +
    (mix.driftBound > 0 ? `; clock drift up to ${pct(mix.driftBound)}` : '') +
    `; snapshot every ${mix.snapshotEveryEntries} entries; reads via ${mix.leaseReads ? 'leader lease' : 'ReadIndex'}`
  );
}

function summaryLine(seed: number, r: SimResult): string {
  return `live-sim: seed=${seed} ops=${r.ops} unknown=${r.unknown} violations=${r.violations.length}`;
}

async function main(): Promise<void> {
  let values;
  try {
    values = parseArgs({
      options: {
        seed: { type: 'string' },
        speed: { type: 'string' },
        fast: { type: 'boolean' },
        'no-color': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  if (values.help === true) usage('npm run sim:live: a live simulated Tessera cluster');
  let seed = Math.floor(Date.now() / 1000) % 1_000_000;
  if (values.seed !== undefined) {
    seed = Number(values.seed);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      usage('--seed must be an integer between 0 and 4294967295');
    }
  }
  let speed = 1;
  if (values.speed !== undefined) {
    speed = Number(values.speed);
    if (!Number.isFinite(speed) || speed <= 0) usage('--speed must be a number > 0');
  }
  const fast = values.fast === true;
  const tty = process.stdout.isTTY === true;
  const color = tty && values['no-color'] !== true && process.stdout.hasColors();
  const out = new Out(color, tty && !fast);

  const simStart = performance.now();
  const r = runSimulation({
    seed,
    nodes: NODES,
    faults: parseFaults(FAULTS),
    bugs: new Set(),
    ops: DEFAULT_OPS,
    trace: true,
  });
  const simMs = performance.now() - simStart;
  const exitCode = r.violations.length === 0 ? 0 : 1;
  process.exitCode = exitCode;
  // A closed pipe (`| head`) ends the show quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(exitCode);
    throw e;
  });

  const lines = parseTrace(r.trace);
  const header =
    lines.length > 0 && lines[0]!.text.startsWith('seed=') ? lines.shift()! : undefined;
  const spanMs = Math.max(r.virtualMs, lines.at(-1)?.t ?? 0, 1);
  const wallMs = PLAYBACK_MS / speed;
  const view = new ClusterView(NODES);

  const b = (s: string): string => out.paint(SGR.bold, s);
  out.line(b(`Tessera live simulation: ${NODES} simulated nodes, every fault injected`));
  out.line(`  seed ${b(String(seed))}   replay: ${replayCommand(seed)}`);
  if (header !== undefined) out.line(`  faults: ${describeMix(header.text)}`);
  out.line(
    `  ${(spanMs / 1000).toFixed(1)} s of simulated time, ${r.events} events, ${lines.length} trace lines` +
      (fast ? ', printed without pacing' : `, played back over ~${(wallMs / 1000).toFixed(0)} s`) +
      (r.trace.length >= SIM_TRACE_CAP ? ` (trace capped at ${SIM_TRACE_CAP} lines)` : ''),
  );
  out.line(
    `  phases: safety (clients run while faults are injected), then heal + liveness (a leader, then the remaining ops)`,
  );
  out.line(
    `  labels: ${(
      [
        'leader',
        'vote',
        'op',
        'op-unknown',
        'crash',
        'restart',
        'pause',
        'partition',
        'member',
        'heal',
      ] as const
    )
      .map((k) => out.paint(STYLES[k], LABELS[k]))
      .join(' ')} ...`,
  );
  out.flush();

  let interrupted = false;
  const abort = new AbortController();
  const onSigint = (): void => {
    interrupted = true;
    abort.abort();
  };
  process.once('SIGINT', onSigint);

  const every = statusInterval(spanMs, STATUS_LINES);
  let nextStatus = every;
  const statusLine = (tMs: number): void => {
    out.line(out.paint(SGR.dim, `  -- ${view.status(tMs)}`));
  };
  const start = performance.now();
  const n = Math.max(lines.length, 1);
  for (let i = 0; i < lines.length && !interrupted; i++) {
    const line = lines[i]!;
    while (line.t >= nextStatus) {
      statusLine(nextStatus);
      nextStatus += every;
    }
    if (!fast) {
      const at = wallMs * (TIME_WEIGHT * (line.t / spanMs) + (1 - TIME_WEIGHT) * (i / n));
      const wait = start + at - performance.now();
      if (wait > 5) {
        out.flush();
        await sleep(wait, undefined, { signal: abort.signal }).catch(() => undefined);
        if (interrupted) break;
      }
    }
    const { kind, note } = view.apply(line.text);
    if (kind === 'heal') {
      out.line(out.paint(STYLES.heal, `  == safety phase over: ${view.phaseSummary()}`));
      view.phaseCounts = zeroCounts();
    }
    const label = LABELS[kind].padEnd(7);
    const body = note === '' ? line.text : `${line.text}  <- ${note}`;
    const ts = line.raw.slice(0, line.raw.length - line.text.length);
    out.line(`${ts}${out.paint(STYLES[kind], `${label} ${body}`)}`);
    view.settle();
    out.status(view.status(line.t));
  }
  process.removeListener('SIGINT', onSigint);
  if (interrupted) {
    out.line('  (interrupted: the rest of the run is not shown; its result follows)');
  } else {
    statusLine(spanMs);
    if (view.phase === 'liveness') {
      out.line(out.paint(STYLES.liveness, `  == liveness phase: ${view.phaseSummary()}`));
    }
  }
  for (const v of r.violations) {
    out.line(out.paint(SGR.bold + SGR.red, `VIOLATION seed=${seed}: ${v}`));
  }
  if (r.violations.length > 0) out.line(`  replay: ${replayCommand(seed)}`);
  out.line(
    `  ${(r.virtualMs / 1000).toFixed(1)} s of simulated time (computed in ${simMs.toFixed(0)} ms` +
      (fast ? '); ' : `, shown in ${((performance.now() - start) / 1000).toFixed(1)} s); `) +
      `${plural(view.total.elections, 'leader election')}, ${r.ops} ops with a definite answer, ${r.unknown} with unknown outcome`,
  );
  out.line(
    out.paint(r.violations.length === 0 ? SGR.green : SGR.bold + SGR.red, summaryLine(seed, r)),
  );
  out.close();
  if (interrupted) process.exitCode = 130;
}

await main();
