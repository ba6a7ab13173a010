/**
 * The `tessera` command line:
 *
 *   tessera start --id N --dir D --cluster ID --members LIST [--initial-splits K1,K2] [--join]
 *   tessera dev [--dir ./.tessera/dev] [--base-port 7000] [--initial-splits m,table:users:string:us]
 *   tessera put KEY VALUE | get KEY | del KEY | cas | scan  [--endpoints LIST]
 *   tessera status [--endpoints LIST] [--json]
 *   tessera member add ID --raft HOST:PORT --http HOST:PORT | member remove ID
 *   tessera table create NAME --pk COL:TYPE,... | table describe NAME | table list | table drop NAME
 *   tessera row put|get|update|delete TABLE '<json>' ... | row scan TABLE [--start/--end '<pk json>']
 *     [--start-exclusive]
 *
 * LIST of members: `1=127.0.0.1:7001/127.0.0.1:8001,...` (raft/http);
 * LIST of endpoints: `127.0.0.1:8001,127.0.0.1:8002`, or env TESSERA_ENDPOINTS.
 * Client commands follow NOT_LEADER hints and exit 1 on an error. Table and
 * row commands print one JSON document on stdout (rows in their wire form)
 * and errors as `tessera: CODE: message` on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { nodeId } from '../core/ids.ts';
import type { NodeStatus, RangeStatus } from '../api/http-api.ts';
import { TesseraClient } from '../client/client.ts';
import { rowToJson, type WriteRowOptions } from '../client/tables.ts';
import { TesseraError } from '../core/errors.ts';
import { attributeToJson } from '../table/values.ts';
import {
  cellsFromJson,
  conditionFromFlags,
  intFlag,
  parseJsonArg,
  pkFromJsonArg,
  scanFromFlags,
  scanPageJson,
  tableSchemaFromFlags,
  updateFromJsonArg,
  type CreateTableFlags,
  type ScanFlags,
} from './table-args.ts';
import { httpJson, requestFollowingLeader, sleep, type HttpReply } from '../node/http-client.ts';
import { formatMembers, parseMembers } from '../node/members.ts';
import { TesseraServer } from '../node/server.ts';
import { splitList } from './split-args.ts';

/** How long `dev` waits for a leader, in ms. */
const DEV_LEADER_WAIT_MS = 30_000;
/** How long `dev` waits for its children to exit after SIGTERM before SIGKILL, in ms. */
const DEV_STOP_WAIT_MS = 5_000;
/** Per-node timeout of `status`, in ms. */
const STATUS_TIMEOUT_MS = 1_500;

interface StartOptions {
  config?: string;
  id?: string;
  dir?: string;
  cluster?: string;
  members?: string;
  grpcPort?: string;
  initialSplits?: string;
  join?: boolean;
}

/**
 * Options from `--config FILE` (JSON with the same names as the flags:
 * `{"id": 1, "dir": "...", "cluster": "...", "members": "...", "grpcPort": 9001}`),
 * overridden by flags given on the command line.
 */
function startOptions(o: StartOptions): Required<
  Omit<StartOptions, 'config' | 'grpcPort' | 'initialSplits' | 'join'>
> & {
  grpcPort?: string;
  initialSplits?: string;
  join: boolean;
} {
  let file: Record<string, unknown> = {};
  if (o.config !== undefined) {
    try {
      file = JSON.parse(readFileSync(o.config, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      fail(`--config ${o.config}: ${(e as Error).message}`);
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) {
      fail(`--config ${o.config}: not a JSON object`);
    }
  }
  const pick = (name: Exclude<keyof StartOptions, 'join'>): string | undefined => {
    const flag = o[name];
    if (flag !== undefined) return flag;
    const v = file[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number')
      fail(`--config: "${name}" must be a string`);
    return String(v);
  };
  const need = (name: 'id' | 'dir' | 'cluster' | 'members'): string =>
    pick(name) ?? fail(`start: --${name} is required (flag or config file)`);
  const grpcPort = pick('grpcPort');
  const initialSplits = pick('initialSplits');
  return {
    id: need('id'),
    dir: need('dir'),
    cluster: need('cluster'),
    members: need('members'),
    ...(grpcPort === undefined ? {} : { grpcPort }),
    ...(initialSplits === undefined ? {} : { initialSplits }),
    join: o.join === true || file.join === true,
  };
}

async function startCommand(flags: StartOptions) {
  const o = startOptions(flags);
  const grpcPort = o.grpcPort === undefined ? undefined : Number(o.grpcPort);
  if (grpcPort !== undefined && !(Number.isInteger(grpcPort) && grpcPort > 0 && grpcPort < 65536)) {
    fail('--grpc-port must be a port number');
  }
  const server = new TesseraServer({
    id: nodeId(Number(o.id)),
    dir: o.dir,
    clusterId: o.cluster,
    members: parseMembers(o.members),
    ...(grpcPort === undefined ? {} : { grpcPort }),
    ...(o.initialSplits === undefined ? {} : { initialSplits: splitList(o.initialSplits) }),
    join: o.join,
  });
  await server.start();
  process.stdout.write(`${JSON.stringify({ ready: true, id: Number(o.id), pid: process.pid })}\n`);
  const shutdown = (): void => {
    void server.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

/**
 * The dev cluster's splits: key-value keys at `m`, and table `users` (the
 * README's example) at region `us`, so that its scans cross ranges.
 */
const DEV_SPLITS = 'm,table:users:string:us';

function devMembers(basePort: number): string {
  const members = new Map(
    [1, 2, 3].map((i) => [
      nodeId(i),
      {
        raftHost: '127.0.0.1',
        raftPort: basePort + i,
        httpHost: '127.0.0.1',
        httpPort: basePort + 1000 + i,
      },
    ]),
  );
  return formatMembers(members);
}

function spawnNode(
  id: number,
  dir: string,
  cluster: string,
  members: string,
  grpcPort: number,
  splits: string,
): ChildProcess {
  const script = fileURLToPath(import.meta.url);
  const nodeDir = join(dir, `n${id}`);
  mkdirSync(nodeDir, { recursive: true });
  const log = openSync(join(dir, `n${id}.log`), 'a');
  const args = ['--import', 'tsx', script, 'start', '--id', String(id), '--dir', nodeDir];
  args.push('--cluster', cluster, '--members', members, '--grpc-port', String(grpcPort));
  args.push('--initial-splits', splits);
  return spawn(process.execPath, args, { stdio: ['ignore', log, log] });
}

/**
 * Polls the endpoints until one sees a leader for every range it hosts
 * (the cluster serves); returns that endpoint. Bounded by `waitMs`.
 */
async function waitForLeaders(endpoints: readonly string[], waitMs: number): Promise<string> {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    for (const e of endpoints) {
      const st = await httpJson(e, { method: 'GET', path: '/v1/status', timeoutMs: 500 }).catch(
        () => null,
      );
      const ranges = st?.status === 200 ? (st.body as NodeStatus).ranges : [];
      if (ranges.length > 0 && ranges.every((r) => r.leader !== 0)) return e;
    }
    await sleep(200);
  }
  throw new Error(`no leader for every range within ${waitMs} ms`);
}

async function stopChildren(children: readonly ChildProcess[]): Promise<void> {
  const exited = children.map(
    (c) =>
      new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) resolve();
        else c.once('exit', () => resolve());
      }),
  );
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }, DEV_STOP_WAIT_MS);
  await Promise.all(exited);
  clearTimeout(timer);
}

async function devCommand(o: {
  dir: string;
  basePort: string;
  initialSplits: string;
}): Promise<void> {
  const base = Number(o.basePort);
  if (!Number.isInteger(base) || base < 1 || base + 2003 > 65535) fail('bad --base-port');
  mkdirSync(o.dir, { recursive: true });
  const members = devMembers(base);
  const children = [1, 2, 3].map((i) =>
    spawnNode(i, o.dir, 'dev', members, base + 2000 + i, o.initialSplits),
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void stopChildren(children).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (const c of children) {
    c.once('exit', (code, signal) => {
      if (!stopping) process.stderr.write(`node pid ${c.pid} exited (${code ?? signal})\n`);
    });
  }
  const endpoints = [1, 2, 3].map((i) => `127.0.0.1:${base + 1000 + i}`);
  await waitForLeaders(endpoints, DEV_LEADER_WAIT_MS).catch((e: Error) => {
    stop();
    return fail(e.message);
  });
  writeFileSync(join(o.dir, 'endpoints'), endpoints.join(','));
  const st = await collectStatus(endpoints);
  process.stdout.write(`tessera dev: 3 nodes up, ${st.ranges.length} ranges\n`);
  for (const [i, e] of endpoints.entries()) {
    process.stdout.write(
      `  node ${i + 1}: http://${e}  grpc 127.0.0.1:${base + 2001 + i}  (pid ${children[i]!.pid}, log ${o.dir}/n${i + 1}.log)\n`,
    );
  }
  process.stdout.write(`export TESSERA_ENDPOINTS=${endpoints.join(',')}\n`);
}

function endpointsOf(o: { endpoints?: string }): string[] {
  const text = o.endpoints ?? process.env.TESSERA_ENDPOINTS;
  if (text === undefined || text.trim() === '')
    fail('no endpoints: pass --endpoints or set TESSERA_ENDPOINTS');
  return text
    .split(',')
    .map((e) => e.trim().replace(/^http:\/\//, ''))
    .filter((e) => e !== '');
}

/** Prints an error reply and exits 1, or returns the body of a 2xx reply. */
function okBody(reply: HttpReply): Record<string, unknown> {
  if (reply.status >= 200 && reply.status < 300) return reply.body as Record<string, unknown>;
  return fail(`error ${reply.status}: ${JSON.stringify(reply.body)}`);
}

/** A fresh exactly-once session per command: retries of it apply at most once. */
function sessionHeaders(): Record<string, string> {
  return { 'x-tessera-client': String(randomInt(1, 2 ** 48)), 'x-tessera-seq': '1' };
}

const kvPath = (key: string): string => `/v1/kv/${encodeURIComponent(key)}`;

async function putCommand(key: string, value: string, o: { endpoints?: string }): Promise<void> {
  const req = {
    method: 'PUT',
    path: kvPath(key),
    body: { value },
    headers: sessionHeaders(),
  } as const;
  okBody(await requestFollowingLeader(endpointsOf(o), req));
  process.stdout.write('OK\n');
}

async function delCommand(key: string, o: { endpoints?: string }): Promise<void> {
  const req = { method: 'DELETE', path: kvPath(key), headers: sessionHeaders() } as const;
  okBody(await requestFollowingLeader(endpointsOf(o), req));
  process.stdout.write('OK\n');
}

async function getCommand(key: string, o: { endpoints?: string; serializable?: boolean }) {
  const query = o.serializable === true ? '?consistency=serializable' : '';
  const reply = await requestFollowingLeader(endpointsOf(o), {
    method: 'GET',
    path: kvPath(key) + query,
  });
  const value = okBody(reply).value;
  if (typeof value !== 'string') fail(`${key}: not found`);
  process.stdout.write(`${value}\n`);
}

/** `tessera cas KEY VALUE --expect OLD | --absent`: prints whether it swapped (exit 1 if not). */
async function casCommand(
  key: string,
  expect: string | undefined,
  value: string,
  o: { endpoints?: string; absent?: boolean; json?: boolean },
): Promise<void> {
  if ((o.absent === true) === (expect !== undefined)) fail('cas: give either --expect or --absent');
  const req = {
    method: 'POST',
    path: `${kvPath(key)}/cas`,
    body: { expect: o.absent === true ? null : expect, value },
    headers: sessionHeaders(),
  } as const;
  const swapped = okBody(await requestFollowingLeader(endpointsOf(o), req)).swapped === true;
  if (o.json === true) process.stdout.write(`${JSON.stringify({ key, swapped })}\n`);
  else process.stdout.write(swapped ? 'SWAPPED\n' : 'NOT SWAPPED\n');
  if (!swapped) process.exitCode = 1;
}

/** `tessera scan`: pages through [start, end) and prints every pair. */
async function scanCommand(o: {
  endpoints?: string;
  start?: string;
  end?: string;
  limit?: string;
  json?: boolean;
  serializable?: boolean;
}): Promise<void> {
  const total = o.limit === undefined ? Number.POSITIVE_INFINITY : Number(o.limit);
  if (!(total > 0)) fail('--limit must be a positive integer');
  const eps = endpointsOf(o);
  const pairs: { key: string; value: string }[] = [];
  let start: string | null = o.start ?? '';
  while (start !== null && pairs.length < total) {
    const q = new URLSearchParams({ start, limit: String(Math.min(1000, total - pairs.length)) });
    if (o.end !== undefined) q.set('end', o.end);
    if (o.serializable === true) q.set('consistency', 'serializable');
    const body = okBody(await requestFollowingLeader(eps, { method: 'GET', path: `/v1/kv?${q}` }));
    pairs.push(...(body.pairs as { key: string; value: string }[]));
    start = body.next as string | null;
  }
  if (o.json === true) process.stdout.write(`${JSON.stringify({ pairs, next: start })}\n`);
  else for (const { key, value } of pairs) process.stdout.write(`${key}\t${value}\n`);
}

interface ClusterStatus {
  members: { id: number; address: string; pid: number | null; up: boolean }[];
  ranges: {
    id: number;
    kind: 'meta' | 'data';
    start: string;
    end: string | null;
    leader: number;
    term: number;
    commit: number;
    applied: number;
    voters: readonly number[];
    learners: readonly number[];
  }[];
}

async function statusOf(endpoint: string): Promise<NodeStatus | null> {
  return httpJson(endpoint, { method: 'GET', path: '/v1/status', timeoutMs: STATUS_TIMEOUT_MS })
    .then((r) => (r.status === 200 ? (r.body as NodeStatus) : null))
    .catch(() => null);
}

/** Asks the endpoints, then every recorded member they did not cover. */
async function collectStatus(endpoints: readonly string[]): Promise<ClusterStatus> {
  const first = await Promise.all(endpoints.map(statusOf));
  const asked = new Set(endpoints);
  const others = new Set<string>();
  for (const st of first)
    for (const m of st?.members ?? []) if (!asked.has(m.http)) others.add(m.http);
  const rest = await Promise.all([...others].map(statusOf));
  const up = [...first, ...rest].filter((r): r is NodeStatus => r !== null);
  // The members as the most advanced meta replica records them.
  const newest = [...up].sort((a, b) => b.applied - a.applied)[0];
  const known = newest?.members ?? endpoints.map((e, i) => ({ id: i + 1, http: e, raft: '' }));
  const byId = new Map(up.map((s) => [s.id as number, s]));
  // Each range as its leader reports it (else the replica with the highest term).
  const best = new Map<number, RangeStatus>();
  for (const st of up) {
    for (const r of st.ranges) {
      const b = best.get(r.id);
      const better =
        b === undefined ||
        (r.role === 'leader' && b.role !== 'leader') ||
        (r.role === b.role && (r.term > b.term || (r.term === b.term && r.commit > b.commit)));
      if (better) best.set(r.id, r);
    }
  }
  return {
    members: known.map((m) => ({
      id: m.id,
      address: m.http,
      pid: byId.get(m.id)?.pid ?? null,
      up: byId.has(m.id),
    })),
    ranges: [...best.values()]
      .sort((a, b) => a.id - b.id)
      .map((r) => ({
        id: r.id,
        kind: r.kind,
        start: r.start,
        end: r.end,
        leader: r.leader,
        term: r.term,
        commit: r.commit,
        applied: r.applied,
        voters: r.voters,
        learners: r.learners,
      })),
  };
}

async function statusCommand(o: { endpoints?: string; json?: boolean }): Promise<void> {
  const st = await collectStatus(endpointsOf(o));
  if (o.json === true) {
    process.stdout.write(`${JSON.stringify(st)}\n`);
    return;
  }
  for (const m of st.members) {
    process.stdout.write(`node ${m.id}  ${m.address}  ${m.up ? `up (pid ${m.pid})` : 'DOWN'}\n`);
  }
  for (const r of st.ranges) {
    const span =
      r.kind === 'meta'
        ? 'meta'
        : `[${JSON.stringify(r.start)}, ${r.end === null ? 'end' : JSON.stringify(r.end)})`;
    process.stdout.write(
      `range ${r.id} ${span}  leader=${r.leader} term=${r.term} commit=${r.commit} applied=${r.applied} voters=${r.voters.join(',')}${r.learners.length > 0 ? ` learners=${r.learners.join(',')}` : ''}\n`,
    );
  }
}

/** `tessera member add ID --raft H:P --http H:P [--grpc-port P]`: the node must run with --join. */
async function memberAddCommand(
  id: string,
  o: { endpoints?: string; raft?: string; http?: string; grpcPort?: string; json?: boolean },
): Promise<void> {
  if (o.raft === undefined || o.http === undefined)
    fail('member add: --raft and --http are required');
  const grpcPort = o.grpcPort === undefined ? undefined : Number(o.grpcPort);
  const client = new TesseraClient({ endpoints: endpointsOf(o) });
  const r = await client.addMember({
    id: Number(id),
    raft: o.raft,
    http: o.http,
    ...(grpcPort !== undefined ? { grpcPort } : {}),
  });
  if (o.json === true)
    process.stdout.write(`${JSON.stringify({ added: r.id, ranges: r.ranges })}\n`);
  else process.stdout.write(`member ${r.id} added: voter of ranges ${r.ranges.join(',')}\n`);
}

/** `tessera member remove ID`. */
async function memberRemoveCommand(id: string, o: { endpoints?: string; json?: boolean }) {
  const client = new TesseraClient({ endpoints: endpointsOf(o) });
  const r = await client.removeMember(Number(id));
  if (o.json === true)
    process.stdout.write(`${JSON.stringify({ removed: r.id, ranges: r.ranges })}\n`);
  else process.stdout.write(`member ${r.id} removed from ranges ${r.ranges.join(',')}\n`);
}

// ---- tables and rows ----

type ClientFlags = { endpoints?: string };

function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

/** The handle on TABLE's rows, with a client for the command's endpoints. */
function rowsOf(table: string, o: ClientFlags) {
  return new TesseraClient({ endpoints: endpointsOf(o) }).table(table);
}

/** The write options of `--expect` / `--if`. */
function writeOptions(o: { expect?: string; if?: string }): WriteRowOptions {
  const condition = conditionFromFlags(o);
  return condition === undefined ? {} : { condition };
}

async function tableCreateCommand(name: string, o: CreateTableFlags & ClientFlags) {
  const schema = tableSchemaFromFlags(name, o);
  const client = new TesseraClient({ endpoints: endpointsOf(o) });
  printJson({ table: await client.createTable(schema) });
}

async function tableDescribeCommand(name: string, o: ClientFlags) {
  const client = new TesseraClient({ endpoints: endpointsOf(o) });
  printJson({ table: await client.describeTable(name) });
}

async function tableListCommand(o: ClientFlags) {
  const client = new TesseraClient({ endpoints: endpointsOf(o) });
  printJson({ tables: await client.listTables() });
}

async function tableDropCommand(name: string, o: ClientFlags) {
  const client = new TesseraClient({ endpoints: endpointsOf(o) });
  await client.dropTable(name);
  printJson({ ok: true });
}

async function rowPutCommand(
  table: string,
  row: string,
  o: ClientFlags & { expect?: string; if?: string },
) {
  const cells = cellsFromJson(parseJsonArg(row, 'row'), 'row');
  await rowsOf(table, o).putRow(cells, writeOptions(o));
  printJson({ ok: true });
}

async function rowGetCommand(
  table: string,
  pk: string,
  o: ClientFlags & { maxVersions?: string; at?: string; serializable?: boolean },
) {
  const primaryKey = pkFromJsonArg(parseJsonArg(pk, 'primary key'), 'primary key');
  const row = await rowsOf(table, o).getRow(primaryKey, {
    ...(o.maxVersions !== undefined
      ? { maxVersions: intFlag(o.maxVersions, 'max-versions', 1) }
      : {}),
    ...(o.at !== undefined ? { at: intFlag(o.at, 'at', 0) } : {}),
    ...(o.serializable === true ? { consistency: 'serializable' as const } : {}),
  });
  printJson({ row: row === null ? null : rowToJson(row) });
}

async function rowUpdateCommand(
  table: string,
  pk: string,
  update: string,
  o: ClientFlags & { expect?: string; if?: string },
) {
  const primaryKey = pkFromJsonArg(parseJsonArg(pk, 'primary key'), 'primary key');
  const change = updateFromJsonArg(parseJsonArg(update, 'update'));
  const increments = await rowsOf(table, o).updateRow(primaryKey, change, writeOptions(o));
  const json: Record<string, unknown> = {};
  for (const [col, v] of Object.entries(increments))
    if (v !== undefined) json[col] = attributeToJson(v);
  printJson({ ok: true, increments: json });
}

async function rowDeleteCommand(
  table: string,
  pk: string,
  o: ClientFlags & { expect?: string; if?: string },
) {
  const primaryKey = pkFromJsonArg(parseJsonArg(pk, 'primary key'), 'primary key');
  await rowsOf(table, o).deleteRow(primaryKey, writeOptions(o));
  printJson({ ok: true });
}

async function rowScanCommand(table: string, o: ClientFlags & ScanFlags) {
  printJson(scanPageJson(await rowsOf(table, o).scan(scanFromFlags(o))));
}

function fail(message: string): never {
  process.stderr.write(`tessera: ${message}\n`);
  process.exit(1);
}

function program(): Command {
  const p = new Command('tessera').description('Tessera: a Raft-replicated key-value store');
  p.command('start')
    .description('run one node of a static cluster')
    .option('--config <file>', 'JSON file with any of the options below (flags win)')
    .option('--id <n>', 'this node id')
    .option('--dir <dir>', 'data directory')
    .option('--cluster <id>', 'cluster id')
    .option('--members <list>', 'ID=RAFTHOST:PORT/HTTPHOST:PORT,...')
    .option('--grpc-port <port>', 'also serve the gRPC API on this port (on the HTTP host)')
    .option(
      '--initial-splits <keys>',
      'a new cluster splits its key space at these keys (comma-separated; table:NAME = where table NAME starts, table:NAME:TYPE:VALUE = inside table NAME at that partition key; all founders alike)',
    )
    .option('--join', 'join an existing cluster: wait for `tessera member add` instead of founding')
    .action(startCommand);
  p.command('dev')
    .description('run a local 3-node cluster as child processes')
    .option('--dir <dir>', 'data directory', './.tessera/dev')
    .option(
      '--base-port <p>',
      'raft ports P+1..P+3, http ports P+1001..P+1003, grpc ports P+2001..P+2003',
      '7000',
    )
    .option(
      '--initial-splits <keys>',
      'split the key space at these keys (comma-separated; as for start)',
      DEV_SPLITS,
    )
    .action(devCommand);
  const endpoints = '--endpoints <list>';
  const endpointsHelp = 'HOST:PORT,... (default: $TESSERA_ENDPOINTS)';
  p.command('put')
    .argument('<key>')
    .argument('<value>')
    .option(endpoints, endpointsHelp)
    .action(putCommand);
  p.command('get')
    .argument('<key>')
    .option(endpoints, endpointsHelp)
    .option('--serializable', 'read the local state of the node asked (may be stale)')
    .action(getCommand);
  p.command('del').argument('<key>').option(endpoints, endpointsHelp).action(delCommand);
  p.command('cas')
    .argument('<key>')
    .argument('<value>', 'the new value')
    .option('--expect <value>', 'the value the key must hold')
    .option('--absent', 'expect the key to be absent')
    .option(endpoints, endpointsHelp)
    .option('--json', 'print JSON')
    .action((key: string, value: string, o) => casCommand(key, o.expect, value, o));
  p.command('scan')
    .option('--start <key>', 'first key (inclusive)')
    .option('--end <key>', 'last key (exclusive)')
    .option('--limit <n>', 'at most this many pairs')
    .option('--serializable', 'read the local state of the node asked (may be stale)')
    .option('--json', 'print JSON')
    .option(endpoints, endpointsHelp)
    .action(scanCommand);
  p.command('status')
    .option(endpoints, endpointsHelp)
    .option('--json', 'print JSON')
    .action(statusCommand);
  const member = p.command('member').description('add or remove cluster members');
  member
    .command('add')
    .argument('<id>', 'the new member id')
    .option('--raft <host:port>', 'its Raft peer address')
    .option('--http <host:port>', 'its HTTP API address')
    .option('--grpc-port <port>', 'its gRPC port, if it serves gRPC')
    .option('--json', 'print JSON')
    .option(endpoints, endpointsHelp)
    .action(memberAddCommand);
  member
    .command('remove')
    .argument('<id>', 'the member id')
    .option('--json', 'print JSON')
    .option(endpoints, endpointsHelp)
    .action(memberRemoveCommand);
  const table = p.command('table').description('create, describe, list and drop tables (JSON out)');
  table
    .command('create')
    .argument('<name>')
    .option('--pk <columns>', 'primary key: NAME:TYPE,... (TYPE string, integer or binary)')
    .option('--auto-increment <column>', 'the server assigns this integer key column on insert')
    .option('--max-versions <n>', 'versions kept per cell')
    .option('--ttl <seconds>', 'seconds a version lives')
    .option(endpoints, endpointsHelp)
    .action(tableCreateCommand);
  table
    .command('describe')
    .argument('<name>')
    .option(endpoints, endpointsHelp)
    .action(tableDescribeCommand);
  table.command('list').option(endpoints, endpointsHelp).action(tableListCommand);
  table
    .command('drop')
    .argument('<name>')
    .option(endpoints, endpointsHelp)
    .action(tableDropCommand);
  const row = p.command('row').description('write and read rows of a table (JSON in and out)');
  const condition = (c: Command): Command =>
    c
      .option('--expect <existence>', 'the row must: exist, not-exist (default: ignore)')
      .option(
        '--if <condition>',
        'a column condition as JSON, e.g. {"column":"n","op":">","value":1}',
      );
  condition(row.command('put').argument('<table>').argument('<row>', 'the row as JSON'))
    .option(endpoints, endpointsHelp)
    .action(rowPutCommand);
  row
    .command('get')
    .argument('<table>')
    .argument('<pk>', 'the primary key as JSON')
    .option('--max-versions <n>', 'versions per column, newest first')
    .option('--at <version>', 'read as of this version (ms since the Unix epoch)')
    .option('--serializable', 'read the local state of the node asked (may be stale)')
    .option('--json', 'print JSON (the only output form)')
    .option(endpoints, endpointsHelp)
    .action(rowGetCommand);
  condition(
    row
      .command('update')
      .argument('<table>')
      .argument('<pk>', 'the primary key as JSON')
      .argument('<update>', '{"put"?, "delete"?, "deleteVersions"?, "increment"?} as JSON'),
  )
    .option(endpoints, endpointsHelp)
    .action(rowUpdateCommand);
  condition(row.command('delete').argument('<table>').argument('<pk>', 'the primary key as JSON'))
    .option(endpoints, endpointsHelp)
    .action(rowDeleteCommand);
  row
    .command('scan')
    .argument('<table>')
    .option(
      '--start <pk>',
      'first primary key (inclusive) as JSON; {"$inf":"min"|"max"} per column',
    )
    .option(
      '--start-exclusive',
      'leave out rows equal to --start (to continue after a page with nextExclusive)',
    )
    .option('--end <pk>', 'last primary key (exclusive) as JSON')
    .option('--limit <n>', 'rows in the page (1..1000, default 100)')
    .option('--backward', 'from --start downwards')
    .option('--max-versions <n>', 'versions per column')
    .option('--serializable', 'read the local state of the node asked (may be stale)')
    .option('--json', 'print JSON (the only output form)')
    .option(endpoints, endpointsHelp)
    .action(rowScanCommand);
  return p;
}

program()
  .parseAsync(process.argv)
  .catch((e: unknown) =>
    fail(
      e instanceof TesseraError
        ? `${e.code}: ${e.message}`
        : e instanceof Error
          ? e.message
          : String(e),
    ),
  );
