// Data-driven scenario tests, in the style of etcd-io/raft's testdata/*.txt
// and interaction_env_handler.go. Every test/raft/testdata/*.txt file is a
// script of commands, each followed by `----`, the lines it prints, and a
// blank line:
//
//   propose 1 foo
//   ----
//   ok index=3 term=2
//
// Lines starting with '#' between commands are comments. Run with REWRITE=1
// to regenerate the expected output in place (then read the diff!).
//
// Commands:
//   add-nodes N [check-quorum=false] [pre-vote=false] [read-mode=lease]
//             [inflight=K] [max-msg-bytes=B]     voters 1..N, founding members
//   add-node ID                 a node with empty storage (to be added by a conf change)
//   warm-up                     let every node's restart guard expire (see harness.ts)
//   campaign ID                 node ID starts an election now (nothing delivered)
//   tick ID [N]                 ticks node ID N times (nothing delivered)
//   tick-all N                  N rounds of: tick every up node, deliver until quiet;
//                               prints role changes, applied entries and read states
//   stabilize                   deliver until quiet, printing every message sent (in
//                               order; "(dropped)" if lost), role changes, applies,
//                               restored snapshots and read states
//   propose ID DATA             a proposal on node ID
//   conf-change ID STEP NODE [STEP NODE...]   STEP: add-voter | add-learner | remove-node
//   read-index ID CTX           a linearizable read on node ID
//   transfer-leader FROM TO     FROM hands leadership to TO
//   isolate ID | cut A B | recover
//   crash ID | restart ID
//   compact ID                  snapshot at the applied index, drop the covered log
//   status                      one line per node
//   log ID                      the node's in-memory log
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { logIndex, nodeId } from '../../src/core/ids.ts';
import type { ProposeResult, RaftConfig } from '../../src/raft/raft.ts';
import type { ConfChangeStep, ConfState, Entry, Message } from '../../src/raft/types.ts';
import type { NetEvent } from './harness.ts';
import { Network, text } from './harness.ts';

const DIR = join(import.meta.dirname, 'testdata');
const REWRITE = process.env['REWRITE'] === '1';

// --- File format ------------------------------------------------------------------

type Item =
  | { readonly kind: 'text'; readonly line: string }
  | { readonly kind: 'cmd'; readonly line: string; readonly lineNo: number; expected: string[] };

function parse(file: string, src: string): Item[] {
  const lines = src.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const items: Item[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      items.push({ kind: 'text', line });
      continue;
    }
    if (lines[i + 1] !== '----')
      throw new Error(`${file}:${i + 2}: expected '----' after '${line}'`);
    const expected: string[] = [];
    let j = i + 2;
    while (j < lines.length && lines[j] !== '') expected.push(lines[j++]!);
    items.push({ kind: 'cmd', line, lineNo: i + 1, expected });
    i = j; // the blank line that ends the block (or the end of the file)
  }
  return items;
}

function render(items: readonly Item[]): string {
  const out: string[] = [];
  for (const it of items) {
    if (it.kind === 'text') out.push(it.line);
    else out.push(it.line, '----', ...it.expected, '');
  }
  return out.join('\n') + '\n';
}

// --- Formatting -------------------------------------------------------------------

const list = (xs: readonly number[]): string => `[${xs.join(',')}]`;

function fmtConf(c: ConfState): string {
  let s = `voters=${list(c.voters)}`;
  if (c.votersOutgoing.length > 0) s += ` outgoing=${list(c.votersOutgoing)}`;
  if (c.learners.length > 0) s += ` learners=${list(c.learners)}`;
  return s;
}

function fmtEntry(e: Entry): string {
  const at = `${e.index}@${e.term}`;
  if (e.type === 'conf-change') {
    const cc = e.confChange!;
    const what =
      cc.kind === 'leave-joint'
        ? 'leave-joint'
        : cc.steps.map((s) => `${s.type} ${s.node}`).join(', ');
    return `${at}:conf(${what})`;
  }
  return e.data.length === 0 ? at : `${at}:${text(e.data)}`;
}

function fmtMessage(m: Message): string {
  const head = `${m.from}->${m.to}`;
  switch (m.type) {
    case 'app':
      return `${head} app term=${m.term} prev=${m.index}@${m.logTerm} commit=${m.commit} [${m.entries.map(fmtEntry).join(' ')}]`;
    case 'app-resp':
      return m.reject
        ? `${head} app-resp term=${m.term} reject index=${m.index} hint=${m.rejectHint}@${m.logTerm}`
        : `${head} app-resp term=${m.term} index=${m.index}`;
    case 'vote':
      return `${head} ${m.pre ? 'prevote' : 'vote'} term=${m.term} last=${m.lastIndex}@${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'vote-resp':
      return `${head} ${m.pre ? 'prevote' : 'vote'}-resp term=${m.term} ${m.reject ? 'rejected' : 'granted'}`;
    case 'heartbeat':
      return `${head} heartbeat term=${m.term} commit=${m.commit}${m.context ? ` ctx=${m.context}` : ''}`;
    case 'heartbeat-resp':
      return `${head} heartbeat-resp term=${m.term}${m.context ? ` ctx=${m.context}` : ''}`;
    case 'snap':
      return `${head} snap term=${m.term} index=${m.snapshot.meta.index}@${m.snapshot.meta.term} ${fmtConf(m.snapshot.meta.conf)}`;
    case 'timeout-now':
      return `${head} timeout-now term=${m.term}`;
    case 'read-index':
      return `${head} read-index term=${m.term} ctx=${m.context}`;
    case 'read-index-resp':
      return `${head} read-index-resp term=${m.term} ctx=${m.context} ${m.reject ? 'rejected' : `index=${m.index}`}`;
  }
}

function fmtEvent(e: NetEvent, withMessages: boolean): string | undefined {
  switch (e.kind) {
    case 'soft': {
      const t = e.term;
      if (e.role === 'leader') return `${e.id} is leader (term ${t})`;
      if (e.role === 'follower') {
        return e.leader === 0
          ? `${e.id} is follower (term ${t}, no leader)`
          : `${e.id} follows ${e.leader} (term ${t})`;
      }
      return `${e.id} is ${e.role} (term ${t})`;
    }
    case 'apply':
      return `${e.id} applies ${fmtEntry(e.entry)}${e.conf ? ` -> ${fmtConf(e.conf)}` : ''}`;
    case 'snapshot':
      return `${e.id} restores snapshot ${e.snapshot.meta.index}@${e.snapshot.meta.term} ${fmtConf(e.snapshot.meta.conf)}`;
    case 'read-state':
      return `${e.id} read-state ctx=${e.readState.context} index=${e.readState.index}`;
    case 'send':
      return withMessages ? `${fmtMessage(e.message)}${e.dropped ? ' (dropped)' : ''}` : undefined;
    case 'deliver':
      return undefined;
  }
}

function fmtResult(r: ProposeResult | { readonly ok: true }): string {
  if (!r.ok) return `error ${r.code} leader=${r.leaderHint}`;
  return 'index' in r ? `ok index=${r.index} term=${r.term}` : 'ok';
}

// --- Commands -----------------------------------------------------------------------

class Runner {
  net: Network | undefined;
  /** Every network the script created (`add-nodes` may start a new cluster). */
  readonly nets: Network[] = [];

  private get n(): Network {
    if (this.net === undefined) throw new Error('add-nodes first');
    return this.net;
  }

  /** Runs `f` and renders the events it produced. */
  private traced(f: () => void, withMessages: boolean): string[] {
    const net = this.n;
    net.events = [];
    f();
    const out: string[] = [];
    for (const e of net.events) {
      const s = fmtEvent(e, withMessages);
      if (s !== undefined) out.push(s);
    }
    net.events = [];
    return out;
  }

  run(line: string): string[] {
    const [cmd, ...args] = line.trim().split(/\s+/);
    const num = (i: number): number => {
      const v = Number(args[i]);
      if (!Number.isInteger(v)) throw new Error(`${cmd}: argument ${i + 1} must be an integer`);
      return v;
    };
    switch (cmd) {
      case 'add-nodes': {
        const config: { -readonly [K in keyof RaftConfig]?: RaftConfig[K] } = {};
        for (const opt of args.slice(1)) {
          const [k, v] = opt.split('=');
          if (k === 'check-quorum') config.checkQuorum = v === 'true';
          else if (k === 'pre-vote') config.preVote = v === 'true';
          else if (k === 'read-mode' && (v === 'safe' || v === 'lease')) config.readMode = v;
          else if (k === 'inflight') config.inflightMsgsMax = Number(v);
          else if (k === 'max-msg-bytes') config.msgBytesMax = Number(v);
          else throw new Error(`add-nodes: unknown option ${opt}`);
        }
        this.net = Network.create(num(0), { config });
        this.nets.push(this.net);
        return [];
      }
      case 'add-node':
        this.n.addEmptyNode(nodeId(num(0)));
        return [];
      case 'warm-up':
        this.n.warmUp();
        return [];
      case 'campaign':
        this.n.raft(num(0)).campaign();
        return [];
      case 'tick':
        this.n.tick(num(0), args[1] === undefined ? 1 : num(1));
        return [];
      case 'tick-all':
        return this.traced(() => this.n.tickAll(num(0)), false);
      case 'stabilize':
        return this.traced(() => this.n.deliverAll(), true);
      case 'propose':
        return [fmtResult(this.n.propose(num(0), args[1] ?? ''))];
      case 'conf-change': {
        const steps: ConfChangeStep[] = [];
        for (let i = 1; i < args.length; i += 2) {
          const type = args[i];
          if (type !== 'add-voter' && type !== 'add-learner' && type !== 'remove-node') {
            throw new Error(`conf-change: unknown step ${type}`);
          }
          steps.push({ type, node: nodeId(num(i + 1)) });
        }
        return [fmtResult(this.n.proposeConfChange(num(0), { kind: 'change', steps }))];
      }
      case 'read-index':
        return [fmtResult(this.n.raft(num(0)).readIndex(args[1] ?? ''))];
      case 'transfer-leader':
        this.n.raft(num(0)).transferLeadership(nodeId(num(1)));
        return [];
      case 'isolate':
        this.n.isolate(num(0));
        return [];
      case 'cut':
        this.n.cut(num(0), num(1));
        return [];
      case 'recover':
        this.n.recover();
        return [];
      case 'crash':
        this.n.crash(num(0));
        return [];
      case 'restart':
        this.n.restart(num(0));
        return [this.statusLine(num(0))];
      case 'compact': {
        const s = this.n.compact(num(0));
        return [`snapshot ${s.meta.index}@${s.meta.term} ${fmtConf(s.meta.conf)}`];
      }
      case 'status':
        return this.n.ids().map((id) => this.statusLine(id));
      case 'log': {
        const log = this.n.raft(num(0)).log;
        const first = log.firstIndex();
        const snap = logIndex(first - 1);
        const out = [`snapshot=${snap}@${log.term(snap) ?? '?'} commit=${log.committed}`];
        for (let i = first; i <= log.lastIndex(); i++) out.push(fmtEntry(log.entry(logIndex(i))!));
        return out;
      }
      default:
        throw new Error(`unknown command '${cmd}'`);
    }
  }

  private statusLine(id: number): string {
    const node = this.n.node(id);
    if (!node.up) return `${id} down`;
    const s = node.raft.status();
    const lead = s.role === 'leader' ? '' : ` leader=${s.leader}`;
    return `${id} ${s.role} term=${s.term} vote=${s.vote}${lead} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} ${fmtConf(s.conf)}`;
  }
}

// --- Tests ------------------------------------------------------------------------

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('raft scenarios (test/raft/testdata)', () => {
  it('found scenario files', () => {
    assert.ok(files.length >= 4, `only ${files.length} scenario files`);
  });

  for (const file of files) {
    it(file, () => {
      const path = join(DIR, file);
      const items = parse(file, readFileSync(path, 'utf8'));
      const runner = new Runner();
      let commands = 0;
      for (const item of items) {
        if (item.kind !== 'cmd') continue;
        commands++;
        let actual: string[];
        try {
          actual = runner.run(item.line);
        } catch (e) {
          throw new Error(`${file}:${item.lineNo}: '${item.line}' failed: ${String(e)}`, {
            cause: e,
          });
        }
        if (actual.length === 0) actual = ['ok'];
        if (REWRITE) item.expected = actual;
        else {
          assert.equal(
            actual.join('\n'),
            item.expected.join('\n'),
            `${file}:${item.lineNo}: output of '${item.line}' differs`,
          );
        }
      }
      assert.ok(commands > 0, `${file} has no commands`);
      // Every scenario ends in a state that is safe: the harness checks it as it goes.
      for (const net of runner.nets) assert.deepEqual(net.violations, []);
      if (REWRITE) writeFileSync(path, render(items));
    });
  }
});
