/**
 * `npm run chaos -- --nodes 3 --duration SECONDS --nemesis kill,pause,partition --out DIR
 *                   [--clients C] [--keys K] [--seed S]`
 *
 * A Jepsen-style test of a real cluster: N `tessera start` processes on
 * loopback, every directed Raft link i→j through a {@link FaultProxy}, C
 * clients running a put/get/cas/delete workload through the HTTP API over K
 * keys and K rows of one table (about half the operations each: see "Table
 * rows" below), and a nemesis that, one fault at a time, kills (SIGKILL, then
 * restart), pauses (SIGSTOP, then SIGCONT) or partitions (cuts the proxies
 * around one node or a minority) a node, often the leader. At the end it heals
 * everything, lets the clients run a little longer, stops them, reads every
 * key and row linearizably, and checks:
 *
 * - violations V: keys whose client history is not linearizable
 *   ({@link checkLinearizable}; 1 if the verdict is not ok but names no key);
 * - lost writes L: keys whose history is linearizable but stops being so once
 *   the final read is appended (the final value contradicts what clients were
 *   told, e.g. an acknowledged write disappeared), plus keys that could not be
 *   read at the end.
 *
 * Files in DIR: `history.jsonl` (one {@link KvOperation} per line, times in ms
 * since the clients started), `final-reads.jsonl` (the final reads, same
 * form, client 0), `nK.log` (node output). Node data dirs `nK/` are removed
 * at the end unless `--keep-data`.
 *
 * Table rows: at the start the run creates table `chaos` (one string key
 * column `k`, maxVersions 2). A row is a register whose value is the latest
 * version of its column `v`; its history key is `row:<k>`, and register
 * operations map onto row operations: put = put `{k, v}`; get = get (the
 * latest `v`, null if the row does not exist); delete = delete; cas with
 * `expect` null = put on condition `not_exist`; other cas = update `v` on
 * condition `exist` and `v = expect`, where CONDITION_FAILED is a definite
 * "did not swap". So the same checker checks every row on its own.
 *
 * Outcomes: a write whose outcome is unknown (timeout or connection lost
 * after sending, OUTCOME_UNKNOWN) is `ok: null, return: null`; a definite
 * refusal is `ok: false`. Retries of one operation reuse its exactly-once
 * session sequence number, so they apply at most once.
 *
 * Last line: `chaos: ops=N unknown=U violations=V lost=L`; exits 0 iff V and
 * L are 0 (2 on a setup error, 130 on SIGINT). Every child is stopped on
 * exit, by pid. Every loop is bounded in count and in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkLinearizable } from '../check/linearizability.ts';
import type { KvOperation } from '../check/history.ts';
import { SeededRng, type Rng } from '../core/rng.ts';
import type { NodeStatus } from '../api/http-api.ts';
import { FaultProxy } from '../node/fault-proxy.ts';
import {
  httpJson,
  leaderHintOf,
  requestFollowingLeader,
  sleep,
  type HttpReply,
  type HttpRequest,
} from '../node/http-client.ts';
import { intOption } from './args.ts';
import { freePorts } from '../node/ports.ts';

/**
 * Initial split points of the chaos cluster's key space (the keys are k0,
 * k1, ...), and one inside the workload table, whose rows thus live in two ranges.
 */
const CHAOS_SPLITS = ['k3', 'k6', 'table:chaos:string:k5'];
/** Deadline of one HTTP request, in ms. */
const REQUEST_TIMEOUT_MS = 1_000;
/** Deadline of one client operation, all its retries included, in ms. */
const OP_DEADLINE_MS = 3_000;
/** Bound on attempts of one client operation. */
const OP_ATTEMPTS_MAX = 12;
/** Deadline of one final read, in ms. */
const FINAL_READ_DEADLINE_MS = 15_000;
/** Bound on attempts of one final read. */
const FINAL_READ_ATTEMPTS_MAX = 60;
/** How long the clients run after the final heal, in ms. */
const SETTLE_MS = 3_000;
/** How long to wait for the first leader, in ms. */
const LEADER_WAIT_MS = 30_000;
/** Grace period between SIGTERM and SIGKILL when stopping nodes, in ms. */
const STOP_WAIT_MS = 5_000;
/** Bound on operations per client (a backstop; the duration ends the run first). */
const CLIENT_OPS_MAX = 1_000_000;
/** Interval between progress lines, in ms. */
const PROGRESS_INTERVAL_MS = 5_000;
/** Shortest fault, in ms. */
const FAULT_MIN_MS = 500;
/** Timeout of a status probe, in ms. */
const STATUS_TIMEOUT_MS = 300;
/** Deadline of creating the workload's table, in ms (the cluster may still be settling). */
const CREATE_TABLE_DEADLINE_MS = 30_000;
/** Bound on rounds of creating the workload's table. */
const CREATE_TABLE_ROUNDS_MAX = 10;
/** The workload's table, its one primary-key column and its value column. */
const TABLE = 'chaos';
const TABLE_KEY_COLUMN = 'k';
const TABLE_VALUE_COLUMN = 'v';
/** The table's maxVersions: rows keep older versions, reads must still see the latest. */
const TABLE_MAX_VERSIONS = 2;
/** History keys of rows: this prefix, then the row's key (`row:k3`). */
const ROW_KEY_PREFIX = 'row:';
/** Share of client operations that go to table rows. */
const TABLE_SHARE = 0.5;
/** The exactly-once session of the table creation (client sessions are 1..C). */
const ADMIN_SESSION_CLIENT = 1_000_000;

const TESSERA_CLI = fileURLToPath(new URL('./tessera.ts', import.meta.url));

/** The faults the nemesis knows. */
export const NEMESES = ['kill', 'pause', 'partition'] as const;
export type Nemesis = (typeof NEMESES)[number];

// ---------------------------------------------------------------------------
// Checking (pure)

/** What {@link checkHistory} finds. */
export interface ChaosVerdict {
  /** Number of non-linearizable (or undecided) keys; at least 1 if the verdict is not ok. */
  readonly violations: number;
  /** Number of keys whose final read contradicts an otherwise linearizable history, or is missing. */
  readonly lost: number;
  readonly badKeys: readonly string[];
  readonly lostKeys: readonly string[];
  /** Explanation of the first problem, or ''. */
  readonly message: string;
}

/**
 * Checks a chaos history: `history` (the clients' operations) must be
 * linearizable, and for each key not already bad, appending its final read
 * (from `finalReads`: one get per key, done after every client operation
 * returned or was given up) must keep the key's history linearizable. A key
 * whose final read did not succeed counts as lost. Pure.
 */
export function checkHistory(
  history: readonly KvOperation[],
  finalReads: readonly KvOperation[],
): ChaosVerdict {
  const base = checkLinearizable(history);
  const badKeys = base.badKeys;
  const violations = base.verdict === 'ok' ? 0 : Math.max(1, badKeys.length);
  const bad = new Set(badKeys);
  const lostKeys: string[] = [];
  let message = base.verdict === 'ok' ? '' : base.message;
  for (const read of finalReads) {
    if (bad.has(read.key)) continue;
    if (read.op !== 'get' || read.ok !== true) {
      lostKeys.push(read.key);
      if (message === '') message = `key ${JSON.stringify(read.key)}: final read failed`;
      continue;
    }
    const ofKey = history.filter((o) => o.key === read.key);
    const r = checkLinearizable([...ofKey, read]);
    if (r.verdict !== 'ok') {
      lostKeys.push(read.key);
      if (message === '')
        message = `lost write: final read ${JSON.stringify(read.output)}\n${r.message}`;
    }
  }
  return { violations, lost: lostKeys.length, badKeys, lostKeys, message };
}

/** Serializes one operation as a `history.jsonl` line (fixed field order, no newline). */
export function historyLine(o: KvOperation): string {
  return JSON.stringify({
    client: o.client,
    op: o.op,
    key: o.key,
    value: o.value,
    expect: o.expect,
    call: o.call,
    return: o.return,
    ok: o.ok,
    output: o.output,
  });
}

// ---------------------------------------------------------------------------
// Options

interface ChaosOptions {
  readonly nodes: number;
  readonly durationMs: number;
  readonly nemeses: readonly Nemesis[];
  readonly out: string;
  readonly clients: number;
  readonly keys: number;
  readonly seed: number;
  readonly keepData: boolean;
}

function usage(message: string): never {
  process.stderr.write(
    `chaos: ${message}\n` +
      'usage: chaos --nodes N --duration SECONDS --nemesis kill,pause,partition --out DIR ' +
      '[--clients C] [--keys K] [--seed S] [--keep-data]\n',
  );
  process.exit(2);
}

function parseOptions(argv: readonly string[]): ChaosOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      nodes: { type: 'string' },
      duration: { type: 'string' },
      nemesis: { type: 'string' },
      out: { type: 'string' },
      clients: { type: 'string' },
      keys: { type: 'string' },
      seed: { type: 'string' },
      'keep-data': { type: 'boolean' },
    },
  });
  if (values.out === undefined) usage('--out is required');
  const nemeses = (values.nemesis ?? 'kill,pause,partition')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'none');
  for (const n of nemeses) {
    if (!(NEMESES as readonly string[]).includes(n)) usage(`unknown nemesis "${n}"`);
  }
  return {
    nodes: intOption(values.nodes, 'nodes', 3, 1, usage),
    durationMs: 1000 * intOption(values.duration, 'duration', 30, 1, usage),
    nemeses: nemeses as Nemesis[],
    out: resolve(values.out),
    clients: intOption(values.clients, 'clients', 5, 1, usage),
    keys: intOption(values.keys, 'keys', 10, 1, usage),
    seed: intOption(values.seed, 'seed', Math.floor(Math.random() * 2 ** 31), 0, usage),
    keepData: values['keep-data'] === true,
  };
}

// ---------------------------------------------------------------------------
// The cluster: processes and proxies

interface NodeProcess {
  readonly id: number;
  readonly dir: string;
  readonly log: string;
  readonly http: string;
  /** The `--members` list this node is started with (peers' raft addresses are proxies). */
  readonly members: string;
  proc: ChildProcess | null;
  paused: boolean;
}

class Cluster {
  readonly nodes: NodeProcess[] = [];
  /** Proxy of the directed raft link `from→to`, keyed `${from}>${to}`. */
  readonly proxies = new Map<string, FaultProxy>();
  unexpectedExits = 0;
  private stopping = false;

  private constructor(private readonly say: (line: string) => void) {}

  /** Allocates ports, starts the proxies; does not start the nodes. */
  static async create(n: number, out: string, say: (line: string) => void): Promise<Cluster> {
    const c = new Cluster(say);
    const ports = await freePorts(2 * n);
    const raft = (i: number): number => ports[2 * (i - 1)]!;
    const http = (i: number): string => `127.0.0.1:${ports[2 * (i - 1) + 1]!}`;
    const ids = Array.from({ length: n }, (_, k) => k + 1);
    const proxyPort = new Map<string, number>();
    for (const from of ids) {
      for (const to of ids) {
        if (from === to) continue;
        const p = new FaultProxy({ host: '127.0.0.1', port: raft(to) });
        c.proxies.set(`${from}>${to}`, p);
        proxyPort.set(`${from}>${to}`, await p.listen('127.0.0.1'));
      }
    }
    for (const id of ids) {
      const members = ids
        .map((j) => {
          const rp = j === id ? raft(j) : proxyPort.get(`${id}>${j}`)!;
          return `${j}=127.0.0.1:${rp}/${http(j)}`;
        })
        .join(',');
      const dir = join(out, `n${id}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      c.nodes.push({
        id,
        dir,
        log: join(out, `n${id}.log`),
        http: http(id),
        members,
        proc: null,
        paused: false,
      });
    }
    return c;
  }

  endpoints(): string[] {
    return this.nodes.map((n) => n.http);
  }

  node(id: number): NodeProcess {
    return this.nodes[id - 1]!;
  }

  start(node: NodeProcess): void {
    const log = openSync(node.log, 'a');
    const args = ['--import', 'tsx', TESSERA_CLI, 'start', '--id', String(node.id)];
    args.push('--dir', node.dir, '--cluster', 'chaos', '--members', node.members);
    // Three data ranges over the workload's keys (k0, k1, ...): every range's leader matters.
    args.push('--initial-splits', CHAOS_SPLITS.join(','));
    const proc = spawn(process.execPath, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    node.proc = proc;
    node.paused = false;
    proc.once('exit', (code, signal) => {
      if (node.proc !== proc) return; // Killed on purpose (proc was cleared first).
      node.proc = null;
      if (this.stopping) return;
      this.unexpectedExits++;
      this.say(`node n${node.id} exited unexpectedly (${code ?? signal}); see ${node.log}`);
    });
  }

  /** SIGKILLs a node and waits for it to exit (bounded). */
  async kill(node: NodeProcess): Promise<void> {
    const proc = node.proc;
    node.proc = null;
    node.paused = false;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((done) => proc.once('exit', () => done()));
    proc.kill('SIGKILL');
    await Promise.race([exited, sleep(STOP_WAIT_MS)]);
  }

  pause(node: NodeProcess): void {
    if (node.proc === null || node.paused) return;
    node.proc.kill('SIGSTOP');
    node.paused = true;
  }

  resume(node: NodeProcess): void {
    if (node.proc === null || !node.paused) return;
    node.proc.kill('SIGCONT');
    node.paused = false;
  }

  /** Cuts every link between `group` and the other nodes, both directions. */
  isolate(group: readonly number[]): void {
    for (const [k, p] of this.proxies) {
      const [from, to] = k.split('>').map(Number) as [number, number];
      if (group.includes(from) !== group.includes(to)) p.cut();
    }
  }

  healNetwork(): void {
    for (const p of this.proxies.values()) p.heal();
  }

  /** Heals the network, resumes paused nodes and restarts dead ones. */
  healAll(): void {
    this.healNetwork();
    for (const n of this.nodes) {
      this.resume(n);
      if (n.proc === null) this.start(n);
    }
  }

  /** The id of a node that reports itself leader of the meta range (highest term), or null. */
  async leader(): Promise<number | null> {
    const replies = await Promise.all(
      this.nodes.map((n) =>
        n.proc === null || n.paused
          ? null
          : httpJson(n.http, { method: 'GET', path: '/v1/status', timeoutMs: STATUS_TIMEOUT_MS })
              .then((r) => (r.status === 200 ? (r.body as NodeStatus) : null))
              .catch(() => null),
      ),
    );
    let best: NodeStatus | null = null;
    for (const st of replies) {
      if (st?.role === 'leader' && (best === null || st.term > best.term)) best = st;
    }
    return best === null ? null : (best.id as number);
  }

  async waitForLeader(waitMs: number): Promise<number> {
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      const l = await this.leader();
      if (l !== null) return l;
      await sleep(200);
    }
    throw new Error(`no leader within ${waitMs} ms; see the node logs`);
  }

  /** Stops every node (SIGCONT, SIGTERM, SIGKILL after a grace period) and closes the proxies. */
  async stop(): Promise<void> {
    this.stopping = true;
    const procs = this.nodes.flatMap((n) => {
      const p = n.proc;
      if (p === null || p.exitCode !== null || p.signalCode !== null) return [];
      if (n.paused) p.kill('SIGCONT');
      n.paused = false;
      return [p];
    });
    const exited = procs.map((p) => new Promise<void>((done) => p.once('exit', () => done())));
    for (const p of procs) p.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }, STOP_WAIT_MS);
    await Promise.race([Promise.all(exited), sleep(2 * STOP_WAIT_MS)]);
    clearTimeout(timer);
    for (const n of this.nodes) n.proc = null;
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }

  /** Last resort on process exit: SIGKILL every child still running (synchronous). */
  killAllNow(): void {
    this.stopping = true;
    for (const n of this.nodes) {
      const p = n.proc;
      if (p !== null && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
  }
}

// ---------------------------------------------------------------------------
// Clients

/** Shared state of the workload. */
interface Workload {
  readonly endpoints: readonly string[];
  readonly keys: number;
  readonly t0: number;
  readonly history: KvOperation[];
  /** Last value seen per key by any client: cas expectations that often hold. */
  readonly lastSeen: Map<string, string | null>;
  /** Where the last NOT_LEADER hint pointed. */
  leaderHint: string | null;
  stop: boolean;
}

/** Outcome of one operation: ok as in {@link KvOperation}, and the value read by a get. */
interface Outcome {
  readonly ok: boolean | null;
  readonly output: string | null;
}

interface Request {
  readonly op: KvOperation['op'];
  readonly key: string;
  readonly value: string | null;
  readonly expect: string | null;
  /** Exactly-once session of a write; null for reads. */
  readonly session: { client: number; seq: number } | null;
}

const kvPath = (key: string): string => `/v1/kv/${encodeURIComponent(key)}`;

/** The row a history key names (`row:k3` → `k3`), or null for a key-value key. */
function rowOf(key: string): string | null {
  return key.startsWith(ROW_KEY_PREFIX) ? key.slice(ROW_KEY_PREFIX.length) : null;
}

type HttpCall = Pick<HttpRequest, 'method' | 'path' | 'body'>;

/** The HTTP request of a key-value operation. */
function kvRequest(req: Request): HttpCall {
  switch (req.op) {
    case 'get':
      return { method: 'GET', path: kvPath(req.key) };
    case 'put':
      return { method: 'PUT', path: kvPath(req.key), body: { value: req.value } };
    case 'delete':
      return { method: 'DELETE', path: kvPath(req.key) };
    case 'cas':
      return {
        method: 'POST',
        path: `${kvPath(req.key)}/cas`,
        body: { expect: req.expect, value: req.value },
      };
  }
}

/** The HTTP request of a register operation on row `k` (see the file header for the mapping). */
function rowRequest(req: Request, k: string): HttpCall {
  const path = (route: string): string => `/v1/tables/${TABLE}/${route}`;
  const primaryKey = { [TABLE_KEY_COLUMN]: k };
  const row = { [TABLE_KEY_COLUMN]: k, [TABLE_VALUE_COLUMN]: req.value };
  switch (req.op) {
    case 'get':
      return {
        method: 'POST',
        path: path('get'),
        body: { primaryKey, columns: [TABLE_VALUE_COLUMN] },
      };
    case 'put':
      return { method: 'POST', path: path('put'), body: { row } };
    case 'delete':
      return { method: 'POST', path: path('delete'), body: { primaryKey } };
    case 'cas':
      if (req.expect === null) {
        return {
          method: 'POST',
          path: path('put'),
          body: { row, condition: { expect: 'not_exist' } },
        };
      }
      return {
        method: 'POST',
        path: path('update'),
        body: {
          primaryKey,
          put: { [TABLE_VALUE_COLUMN]: req.value },
          condition: {
            expect: 'exist',
            if: { column: TABLE_VALUE_COLUMN, op: '=', value: req.expect, passIfMissing: false },
          },
        },
      };
  }
}

/** The latest `v` of a row get's reply body, or null when the row does not exist. */
function rowValueOf(body: unknown): string | null {
  const row = (body as { row?: { columns?: Record<string, { value?: unknown }[]> } | null }).row;
  const latest = row?.columns?.[TABLE_VALUE_COLUMN]?.[0]?.value;
  return typeof latest === 'string' ? latest : null;
}

/**
 * Creates the workload's table (exactly once: a retry reuses the session
 * seq; ALREADY_EXISTS after an attempt whose answer was lost is fine too).
 * Bounded in rounds and time; throws if the cluster never accepts it.
 */
async function createTable(endpoints: readonly string[]): Promise<void> {
  const deadline = Date.now() + CREATE_TABLE_DEADLINE_MS;
  let last = '';
  for (let round = 0; round < CREATE_TABLE_ROUNDS_MAX && Date.now() < deadline; round++) {
    try {
      const reply = await requestFollowingLeader(
        endpoints,
        {
          method: 'POST',
          path: '/v1/tables',
          headers: { 'x-tessera-client': String(ADMIN_SESSION_CLIENT), 'x-tessera-seq': '1' },
          body: {
            name: TABLE,
            primaryKey: [{ name: TABLE_KEY_COLUMN, type: 'string' }],
            maxVersions: TABLE_MAX_VERSIONS,
          },
          timeoutMs: REQUEST_TIMEOUT_MS * 5,
        },
        { deadlineMs: Math.max(1, deadline - Date.now()) },
      );
      if (reply.status >= 200 && reply.status < 300) return;
      if (errorCodeOf(reply) === 'ALREADY_EXISTS') return;
      last = `${reply.status} ${JSON.stringify(reply.body)}`;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    await sleep(500);
  }
  throw new Error(`could not create table ${TABLE}: ${last}`);
}

function errorCodeOf(reply: HttpReply): string | null {
  const code = (reply.body as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

/** Error codes after which the request definitely did not apply and may be retried. */
const RETRY_DEFINITE = new Set([
  'NOT_LEADER',
  'WRONG_RANGE',
  'PROPOSAL_DROPPED',
  'UNAVAILABLE',
  'RESOURCE_EXHAUSTED',
  'TIMEOUT',
  'CONF_CHANGE_IN_PROGRESS',
]);

/** Did the request certainly not reach the server (connection refused)? */
function neverSent(e: unknown): boolean {
  const cause = (e as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === 'ECONNREFUSED';
}

/**
 * Performs one operation with bounded retries within `deadlineMs`. Follows
 * NOT_LEADER hints; rotates endpoints on other failures. An attempt that
 * may have applied (timeout, connection lost, OUTCOME_UNKNOWN) makes the
 * whole operation unknown unless a later attempt (same session seq) succeeds.
 */
async function perform(
  w: Workload,
  req: Request,
  deadlineMs: number,
  attemptsMax: number,
): Promise<Outcome> {
  const deadline = Date.now() + deadlineMs;
  let target = w.leaderHint ?? w.endpoints[0]!;
  let rotate = Math.max(0, w.endpoints.indexOf(target));
  const next = (): void => {
    rotate = (rotate + 1) % w.endpoints.length;
    target = w.endpoints[rotate]!;
  };
  let maybeApplied = false;
  const headers: Record<string, string> =
    req.session === null
      ? {}
      : {
          'x-tessera-client': String(req.session.client),
          'x-tessera-seq': String(req.session.seq),
        };
  const rowKey = rowOf(req.key);
  const http = rowKey === null ? kvRequest(req) : rowRequest(req, rowKey);
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    let reply: HttpReply;
    try {
      reply = await httpJson(target, {
        ...http,
        headers,
        timeoutMs: Math.min(REQUEST_TIMEOUT_MS, left),
      });
    } catch (e) {
      if (!neverSent(e)) maybeApplied = true;
      next();
      await sleep(Math.min(50 * (attempt + 1), 250));
      continue;
    }
    if (reply.status >= 200 && reply.status < 300) {
      if (rowKey !== null) {
        return { ok: true, output: req.op === 'get' ? rowValueOf(reply.body) : null };
      }
      const body = reply.body as { value?: unknown; swapped?: unknown };
      if (req.op === 'get') {
        return { ok: true, output: typeof body.value === 'string' ? body.value : null };
      }
      if (req.op === 'cas') return { ok: body.swapped === true, output: null };
      return { ok: true, output: null };
    }
    const code = errorCodeOf(reply);
    if (rowKey !== null && req.op === 'cas' && code === 'CONDITION_FAILED') {
      // The row's compare failed: definitely not swapped. Retries of this
      // operation reuse its session seq, so this is its one outcome.
      return { ok: false, output: null };
    }
    if (code === 'NOT_LEADER' || code === 'WRONG_RANGE') {
      const hint = leaderHintOf(reply.body);
      if (hint !== null && hint !== target) {
        target = hint;
        w.leaderHint = hint;
        continue;
      }
    } else if (code === 'OUTCOME_UNKNOWN') {
      maybeApplied = true;
    } else if (code === null || !RETRY_DEFINITE.has(code)) {
      // A definite refusal (4xx validation), or an error we cannot classify (5xx).
      if (reply.status >= 500) maybeApplied = true;
      break;
    }
    next();
    await sleep(Math.min(50 * (attempt + 1), 250));
  }
  return { ok: maybeApplied ? null : false, output: null };
}

const nowMs = (w: Workload): number => performance.now() - w.t0;

/** One client: a sequential loop of random operations until `w.stop`; bounded in count. */
async function runClient(w: Workload, client: number, rng: Rng): Promise<void> {
  let seq = 0;
  for (let i = 0; i < CLIENT_OPS_MAX && !w.stop; i++) {
    const k = `k${rng.int(0, w.keys - 1)}`;
    const key = rng.chance(TABLE_SHARE) ? `${ROW_KEY_PREFIX}${k}` : k;
    const roll = rng.next();
    const op: KvOperation['op'] =
      roll < 0.4 ? 'get' : roll < 0.7 ? 'put' : roll < 0.9 ? 'cas' : 'delete';
    const isWrite = op !== 'get';
    if (isWrite) seq++;
    const value = op === 'put' || op === 'cas' ? `c${client}.${seq}` : null;
    const expect = op === 'cas' ? (w.lastSeen.get(key) ?? null) : null;
    const record: KvOperation = {
      client,
      op,
      key,
      value,
      expect,
      call: Math.floor(nowMs(w)),
      return: null,
      ok: null,
      output: null,
    };
    w.history.push(record);
    const session = isWrite ? { client, seq } : null;
    const r = await perform(
      w,
      { op, key, value, expect, session },
      OP_DEADLINE_MS,
      OP_ATTEMPTS_MAX,
    );
    record.ok = r.ok;
    record.output = op === 'get' && r.ok === true ? r.output : null;
    record.return = r.ok === null ? null : Math.ceil(nowMs(w));
    if (r.ok === true) {
      if (op === 'get') w.lastSeen.set(key, r.output);
      else if (op === 'delete') w.lastSeen.set(key, null);
      else w.lastSeen.set(key, value);
    }
    if (r.ok !== true) await sleep(rng.int(0, 50));
  }
}

// ---------------------------------------------------------------------------
// Nemesis

/** Sleeps until `untilMs` (performance clock) or `ms`, whichever is earlier. */
function sleepBounded(ms: number, untilMs: number): Promise<void> {
  return sleep(Math.max(0, Math.min(ms, untilMs - performance.now())));
}

function pickOne<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(0, xs.length - 1)]!;
}

/** A node to fault: the leader half of the time (when known), else a random one. */
async function pickTarget(cluster: Cluster, rng: Rng): Promise<{ id: number; why: string }> {
  if (rng.chance(0.5)) {
    const l = await cluster.leader();
    if (l !== null) return { id: l, why: 'leader' };
  }
  return { id: rng.int(1, cluster.nodes.length), why: 'random' };
}

/** A random minority (at least one node, fewer than half). */
function pickMinority(n: number, rng: Rng): number[] {
  const size = rng.int(1, Math.max(1, Math.floor((n - 1) / 2)));
  const ids = Array.from({ length: n }, (_, k) => k + 1);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, size).sort((a, b) => a - b);
}

/** Applies faults one at a time until `endAt` (performance clock); heals each before the next. */
async function runNemesis(
  cluster: Cluster,
  nemeses: readonly Nemesis[],
  rng: Rng,
  endAt: number,
  say: (line: string) => void,
): Promise<number> {
  let faults = 0;
  // Each iteration sleeps at least 1 s, so the duration bounds the count; the cap is a backstop.
  for (let i = 0; i < 100_000 && nemeses.length > 0; i++) {
    await sleepBounded(rng.int(1000, 4000), endAt);
    // A fault needs time to bite; none starts in the last half second.
    if (performance.now() >= endAt - FAULT_MIN_MS) break;
    const fault = pickOne(rng, nemeses);
    faults++;
    switch (fault) {
      case 'kill': {
        const t = await pickTarget(cluster, rng);
        say(`kill -9 n${t.id} (${t.why})`);
        await cluster.kill(cluster.node(t.id));
        await sleepBounded(rng.int(500, 3000), endAt);
        say(`restart n${t.id}`);
        cluster.start(cluster.node(t.id));
        break;
      }
      case 'pause': {
        const t = await pickTarget(cluster, rng);
        say(`SIGSTOP n${t.id} (${t.why})`);
        cluster.pause(cluster.node(t.id));
        await sleepBounded(rng.int(500, 3000), endAt);
        say(`SIGCONT n${t.id}`);
        cluster.resume(cluster.node(t.id));
        break;
      }
      case 'partition': {
        let group: number[];
        let why: string;
        if (rng.chance(0.5)) {
          const t = await pickTarget(cluster, rng);
          group = [t.id];
          why = t.why;
        } else {
          group = pickMinority(cluster.nodes.length, rng);
          why = 'minority';
        }
        say(`partition {${group.map((g) => `n${g}`).join(',')}} from the rest (${why})`);
        cluster.isolate(group);
        await sleepBounded(rng.int(1000, 5000), endAt);
        say('heal partition');
        cluster.healNetwork();
        break;
      }
    }
  }
  return faults;
}

// ---------------------------------------------------------------------------
// Main

async function finalReads(w: Workload): Promise<KvOperation[]> {
  const reads: KvOperation[] = [];
  const keys = Array.from({ length: w.keys }, (_, k) => `k${k}`);
  for (const key of [...keys, ...keys.map((k) => `${ROW_KEY_PREFIX}${k}`)]) {
    const call = Math.floor(nowMs(w));
    const r = await perform(
      w,
      { op: 'get', key, value: null, expect: null, session: null },
      FINAL_READ_DEADLINE_MS,
      FINAL_READ_ATTEMPTS_MAX,
    );
    reads.push({
      client: 0,
      op: 'get',
      key,
      value: null,
      expect: null,
      call,
      return: r.ok === null ? null : Math.ceil(nowMs(w)),
      ok: r.ok,
      output: r.ok === true ? r.output : null,
    });
  }
  return reads;
}

async function run(
  o: ChaosOptions,
  cluster: Cluster,
  say: (line: string) => void,
): Promise<number> {
  for (const n of cluster.nodes) cluster.start(n);
  const leader = await cluster.waitForLeader(LEADER_WAIT_MS);
  say(`${o.nodes} nodes up, leader n${leader}`);
  await createTable(cluster.endpoints());
  say(`table ${TABLE} created`);
  const rng = new SeededRng(o.seed);
  const w: Workload = {
    endpoints: cluster.endpoints(),
    keys: o.keys,
    t0: performance.now(),
    history: [],
    lastSeen: new Map(),
    leaderHint: cluster.node(leader).http,
    stop: false,
  };
  const progress = setInterval(() => {
    const ok = w.history.filter((h) => h.ok === true).length;
    say(`ops=${w.history.length} ok=${ok} node-crashes=${cluster.unexpectedExits}`);
  }, PROGRESS_INTERVAL_MS);
  try {
    const clients = Array.from({ length: o.clients }, (_, c) =>
      runClient(w, c + 1, new SeededRng(o.seed + 1000 * (c + 1))),
    );
    const endAt = performance.now() + o.durationMs;
    const faults = await runNemesis(cluster, o.nemeses, rng, endAt, say);
    say(`${faults} faults done; healing everything`);
    cluster.healAll();
    await sleep(SETTLE_MS);
    w.stop = true;
    await Promise.all(clients);
  } finally {
    clearInterval(progress);
  }
  say('clients stopped; reading every key');
  const reads = await finalReads(w);
  await cluster.stop();
  writeFileSync(join(o.out, 'history.jsonl'), w.history.map((h) => `${historyLine(h)}\n`).join(''));
  writeFileSync(join(o.out, 'final-reads.jsonl'), reads.map((h) => `${historyLine(h)}\n`).join(''));
  say('checking');
  const verdict = checkHistory(w.history, reads);
  if (verdict.message !== '') say(verdict.message);
  if (verdict.badKeys.length > 0) say(`bad keys: ${verdict.badKeys.join(' ')}`);
  if (verdict.lostKeys.length > 0) say(`lost keys: ${verdict.lostKeys.join(' ')}`);
  if (cluster.unexpectedExits > 0) say(`${cluster.unexpectedExits} unexpected node exits`);
  const unknown = w.history.filter((h) => h.ok === null).length;
  process.stdout.write(
    `chaos: ops=${w.history.length} unknown=${unknown} violations=${verdict.violations} lost=${verdict.lost}\n`,
  );
  return verdict.violations === 0 && verdict.lost === 0 ? 0 : 1;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  mkdirSync(o.out, { recursive: true });
  const start = performance.now();
  const say = (line: string): void => {
    const t = ((performance.now() - start) / 1000).toFixed(1);
    process.stdout.write(`chaos: [${t}s] ${line}\n`);
  };
  say(
    `nodes=${o.nodes} duration=${o.durationMs / 1000}s nemesis=${o.nemeses.join(',') || 'none'} ` +
      `clients=${o.clients} keys=${o.keys} seed=${o.seed} out=${o.out}`,
  );
  const cluster = await Cluster.create(o.nodes, o.out, say);
  process.once('exit', () => cluster.killAllNow());
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: stopping every node`);
    void cluster.stop().finally(() => {
      if (!o.keepData)
        for (const n of cluster.nodes) rmSync(n.dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let code = 2;
  try {
    code = await run(o, cluster, say);
  } catch (e) {
    process.stderr.write(`chaos: error: ${e instanceof Error ? (e.stack ?? e.message) : e}\n`);
    code = 2;
  } finally {
    await cluster.stop();
    if (!o.keepData) for (const n of cluster.nodes) rmSync(n.dir, { recursive: true, force: true });
  }
  process.exit(code);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void main();
}
