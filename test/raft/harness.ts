/**
 * A tiny synchronous in-memory network of Raft cores for tests, in the spirit
 * of etcd-io/raft's `newNetwork` (raft_test.go).
 *
 * Each node has a durable {@link MemoryStorage} and a trivial state machine (the
 * list of applied payloads, as strings). Readies are handled the way
 * src/sim/node.ts handles them: persist (snapshot, entries, hard state), then
 * send, then apply (conf-change entries through `applyConfChange`), then
 * `advance`. Persistence is synchronous, so a crash loses nothing that was
 * handed out in a Ready.
 *
 * Messages go through a FIFO queue: {@link Network.flush} processes every
 * pending Ready and queues the messages it produced (dropping those that the
 * partition rules or the drop filters forbid); {@link Network.deliver}
 * delivers one hop; {@link Network.deliverAll} alternates both until nothing
 * happens. Everything is deterministic: every node draws its randomness from
 * a SeededRng derived from a fixed seed, its id and its incarnation.
 */
import type { LogIndex, NodeId } from '../../src/core/ids.ts';
import { logIndex, NO_NODE, nodeId, term } from '../../src/core/ids.ts';
import { SeededRng } from '../../src/core/rng.ts';
import type { ProposeResult, RaftConfig } from '../../src/raft/raft.ts';
import { bootstrapSnapshot, DEFAULT_RAFT_CONFIG, Raft } from '../../src/raft/raft.ts';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  ReadState,
  Ready,
  Snapshot,
  SoftState,
} from '../../src/raft/types.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const bytes = (s: string): Uint8Array => encoder.encode(s);
export const text = (b: Uint8Array): string => decoder.decode(b);

/** Shorthand to build node id lists in tests. */
export const ids = (...ns: number[]): NodeId[] => ns.map(nodeId);

/** Builds an entry (for crafted logs and messages). */
export function entry(index: number, t: number, data = ''): Entry {
  return { index: logIndex(index), term: term(t), type: 'normal', data: bytes(data) };
}

/** The durable state of one node: what survives a crash. */
export class MemoryStorage {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[];

  constructor(init?: { hardState?: HardState; snapshot?: Snapshot | null; entries?: Entry[] }) {
    this.hardState = init?.hardState ?? { term: term(0), vote: NO_NODE, commit: logIndex(0) };
    this.snapshot = init?.snapshot ?? null;
    this.entries = [...(init?.entries ?? [])];
  }

  private firstIndex(): number {
    return (this.snapshot?.meta.index ?? 0) + 1;
  }

  lastIndex(): LogIndex {
    return logIndex(this.firstIndex() - 1 + this.entries.length);
  }

  applySnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = [];
  }

  /** Appends entries, replacing any stored entries at or after the first one's index. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const keep = first.index - this.firstIndex();
    if (keep < 0 || keep > this.entries.length) {
      throw new Error(`storage append leaves a gap at ${first.index} (last ${this.lastIndex()})`);
    }
    this.entries.length = keep;
    for (const e of entries) this.entries.push(e);
  }

  compact(snapshot: Snapshot): void {
    const drop = snapshot.meta.index - this.firstIndex() + 1;
    if (drop <= 0) return;
    this.entries = this.entries.slice(drop);
    this.snapshot = snapshot;
  }
}

/** One entry as the state machine of a node applied it. */
export interface AppliedEntry {
  readonly index: LogIndex;
  readonly term: number;
  readonly data: string;
}

/** Something the harness observed while handling a Ready (for scenario traces). */
export type NetEvent =
  | {
      readonly kind: 'soft';
      readonly id: NodeId;
      readonly role: string;
      readonly leader: NodeId;
      /** The node's term when the change was handed out. */
      readonly term: number;
    }
  | {
      readonly kind: 'apply';
      readonly id: NodeId;
      readonly entry: Entry;
      readonly conf?: ConfState;
    }
  | { readonly kind: 'snapshot'; readonly id: NodeId; readonly snapshot: Snapshot }
  | { readonly kind: 'read-state'; readonly id: NodeId; readonly readState: ReadState }
  | { readonly kind: 'send'; readonly message: Message; readonly dropped: boolean }
  | { readonly kind: 'deliver'; readonly message: Message };

const INITIAL_SOFT: SoftState = { role: 'follower', leader: NO_NODE };

export class TestNode {
  up = true;
  incarnation = 0;
  raft: Raft;
  /** The state machine: payloads of applied non-empty normal entries, in order. */
  sm: string[] = [];
  /** Entries applied in this incarnation (normal and conf-change), in order. */
  applied: AppliedEntry[] = [];
  /** The configuration after every conf change this node applied (all incarnations). */
  confs: ConfState[] = [];
  /** Read states this node produced (all incarnations). */
  readStates: ReadState[] = [];
  /** Every Ready handled in this incarnation (for tests inspecting them). */
  readies: Ready[] = [];
  /** The last soft state handed out (a core starts as a follower without a leader). */
  lastSoft: SoftState = INITIAL_SOFT;

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    private readonly makeRaft: (node: TestNode) => Raft,
  ) {
    this.raft = makeRaft(this);
  }

  /** Rebuilds the core from durable storage only (a process restart). */
  restart(): void {
    this.incarnation++;
    this.up = true;
    this.applied = [];
    this.readies = [];
    this.lastSoft = INITIAL_SOFT;
    const snap = this.storage.snapshot;
    this.sm =
      snap === null || snap.data.length === 0 ? [] : (JSON.parse(text(snap.data)) as string[]);
    this.raft = this.makeRaft(this);
  }
}

export interface NetworkOptions {
  /** Config overrides for every node (id and rng are set by the harness). */
  readonly config?: Partial<Omit<RaftConfig, 'id' | 'rng'>>;
  /** Per-node overrides, applied after `config`. */
  readonly configFor?: (id: NodeId) => Partial<Omit<RaftConfig, 'id' | 'rng'>>;
  /** Root seed (fixed by default). */
  readonly seed?: number;
  /**
   * Throw on a safety violation (two leaders in one term, two different
   * entries applied at one index). When false they are only recorded in
   * {@link Network.violations} (for canary tests).
   */
  readonly strict?: boolean;
}

/** A drop rule: returns true for a message that must be lost. */
export type DropRule = (m: Message) => boolean;

export const DEFAULT_SEED = 20240604;

/** Upper bound on delivery rounds in one {@link Network.deliverAll} (catches livelock). */
const MAX_ROUNDS = 10_000;

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  /** Every message delivered, in order (tests count and inspect them). */
  readonly delivered: Message[] = [];
  /** Everything observed, in order. Tests may clear it. */
  events: NetEvent[] = [];
  readonly violations: string[] = [];
  readonly seed: number;
  private readonly strict: boolean;
  private readonly isolated = new Set<NodeId>();
  private readonly cuts = new Set<string>();
  private readonly dropRules: DropRule[] = [];
  /** term -> leader seen in it (election safety). */
  private readonly leaders = new Map<number, NodeId>();
  /** index -> the entry applied there by any node (state machine safety). */
  private readonly appliedAt = new Map<number, { term: number; data: string; by: NodeId }>();

  constructor(
    voters: readonly NodeId[],
    private readonly opts: NetworkOptions = {},
    /** Crafted durable state per node (instead of the founding bootstrap). */
    storages?: ReadonlyMap<NodeId, MemoryStorage>,
  ) {
    this.seed = opts.seed ?? DEFAULT_SEED;
    this.strict = opts.strict ?? true;
    for (const id of voters) {
      const storage = storages?.get(id) ?? Network.founderStorage(voters);
      this.addNodeWithStorage(id, storage);
    }
  }

  /** A cluster of voters 1..n started the way founding members start. */
  static create(n: number, opts: NetworkOptions = {}): Network {
    return new Network(
      Array.from({ length: n }, (_, i) => nodeId(i + 1)),
      opts,
    );
  }

  /** The durable state of a founding member: the bootstrap snapshot and {term 1, commit 1}. */
  static founderStorage(voters: readonly NodeId[]): MemoryStorage {
    return new MemoryStorage({
      hardState: { term: term(1), vote: NO_NODE, commit: logIndex(1) },
      snapshot: bootstrapSnapshot(voters, new Uint8Array(0)),
      entries: [],
    });
  }

  /** Adds a node that has not joined any cluster yet (empty storage), to be added by a conf change. */
  addEmptyNode(id: NodeId): TestNode {
    return this.addNodeWithStorage(id, new MemoryStorage());
  }

  addNodeWithStorage(id: NodeId, storage: MemoryStorage): TestNode {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    const node = new TestNode(id, storage, (n) => this.makeRaft(n));
    this.nodes.set(id, node);
    return node;
  }

  /** The configuration a node runs with. */
  configOf(id: NodeId): Omit<RaftConfig, 'rng'> {
    return {
      ...DEFAULT_RAFT_CONFIG,
      ...this.opts.config,
      ...this.opts.configFor?.(id),
      id,
    };
  }

  private makeRaft(n: TestNode): Raft {
    const rng = new SeededRng(
      (this.seed ^ Math.imul(n.id, 0x9e3779b1) ^ (n.incarnation * 7919)) >>> 0,
    );
    const s = n.storage;
    return new Raft(
      { ...this.configOf(n.id), rng },
      { hardState: s.hardState, snapshot: s.snapshot, entries: [...s.entries] },
    );
  }

  node(id: number): TestNode {
    const n = this.nodes.get(nodeId(id));
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: number): Raft {
    return this.node(id).raft;
  }

  /** Ids in ascending order. */
  ids(): NodeId[] {
    return [...this.nodes.keys()].sort((a, b) => a - b);
  }

  // ---------------------------------------------------------------------------
  // Faults

  /** Drops every message to or from `id` until {@link recover}. */
  isolate(id: number): void {
    this.isolated.add(nodeId(id));
  }

  /** Drops messages between `a` and `b` (both directions) until {@link recover}. */
  cut(a: number, b: number): void {
    this.cuts.add(`${Math.min(a, b)}-${Math.max(a, b)}`);
  }

  /** Adds a drop rule until {@link recover}. */
  drop(rule: DropRule): void {
    this.dropRules.push(rule);
  }

  /** Heals every partition and removes every drop rule. Queued messages are unaffected. */
  recover(): void {
    this.isolated.clear();
    this.cuts.clear();
    this.dropRules.length = 0;
  }

  private dropped(m: Message): boolean {
    if (this.isolated.has(m.from) || this.isolated.has(m.to)) return true;
    if (this.cuts.has(`${Math.min(m.from, m.to)}-${Math.max(m.from, m.to)}`)) return true;
    return this.dropRules.some((r) => r(m));
  }

  /** Kills node `id`: its volatile state is gone, messages to it are lost. */
  crash(id: number): void {
    const n = this.node(id);
    n.up = false;
    this.queue = this.queue.filter((m) => m.to !== n.id);
  }

  /** Restarts node `id` from its durable storage only. */
  restart(id: number): void {
    this.node(id).restart();
  }

  // ---------------------------------------------------------------------------
  // Driving

  /** Handles one Ready of `n`: persist, send, apply, advance. */
  private handleReady(n: TestNode): void {
    const rd = n.raft.ready();
    n.readies.push(rd);
    const prev = n.lastSoft;
    n.lastSoft = rd.softState;
    if (prev.role !== rd.softState.role || prev.leader !== rd.softState.leader) {
      this.events.push({ kind: 'soft', id: n.id, ...rd.softState, term: n.raft.status().term });
    }
    if (rd.softState.role === 'leader') this.noteLeader(n);
    // 1. Persist.
    const s = n.storage;
    if (rd.snapshot !== null) s.applySnapshot(rd.snapshot);
    s.append(rd.entries);
    if (rd.hardState !== null) s.hardState = rd.hardState;
    // 2. Send.
    for (const m of rd.messages) {
      const dropped = this.dropped(m);
      this.events.push({ kind: 'send', message: m, dropped });
      if (!dropped) this.queue.push(m);
    }
    // 3. Apply.
    if (rd.snapshot !== null) {
      const data = rd.snapshot.data;
      n.sm = data.length === 0 ? [] : (JSON.parse(text(data)) as string[]);
      this.events.push({ kind: 'snapshot', id: n.id, snapshot: rd.snapshot });
    }
    for (const e of rd.committedEntries) {
      this.noteApplied(n, e);
      if (e.type === 'conf-change') {
        const conf = n.raft.applyConfChange(e.confChange!);
        n.confs.push(conf);
        this.events.push({ kind: 'apply', id: n.id, entry: e, conf });
      } else {
        if (e.data.length > 0) n.sm.push(text(e.data));
        this.events.push({ kind: 'apply', id: n.id, entry: e });
      }
      n.applied.push({ index: e.index, term: e.term, data: text(e.data) });
    }
    for (const rs of rd.readStates) {
      n.readStates.push(rs);
      this.events.push({ kind: 'read-state', id: n.id, readState: rs });
    }
    // 4. Advance.
    n.raft.advance(rd);
  }

  private violation(msg: string): void {
    this.violations.push(msg);
    if (this.strict) throw new Error(`safety violation: ${msg}`);
  }

  private noteLeader(n: TestNode): void {
    const t = n.raft.status().term;
    const seen = this.leaders.get(t);
    if (seen === undefined) this.leaders.set(t, n.id);
    else if (seen !== n.id) this.violation(`two leaders in term ${t}: ${seen} and ${n.id}`);
  }

  private noteApplied(n: TestNode, e: Entry): void {
    const data = e.type === 'conf-change' ? JSON.stringify(e.confChange) : text(e.data);
    const seen = this.appliedAt.get(e.index);
    if (seen === undefined) this.appliedAt.set(e.index, { term: e.term, data, by: n.id });
    else if (seen.term !== e.term || seen.data !== data) {
      this.violation(
        `index ${e.index}: node ${seen.by} applied ${seen.term}/${seen.data}, node ${n.id} applied ${e.term}/${data}`,
      );
    }
  }

  /** Processes every pending Ready of every up node (in id order), queueing their messages. */
  flush(): boolean {
    let any = false;
    for (const id of this.ids()) {
      const n = this.nodes.get(id)!;
      while (n.up && n.raft.hasReady()) {
        this.handleReady(n);
        any = true;
      }
    }
    return any;
  }

  /**
   * Delivers the queued messages (one hop), in order; those matching `only`
   * if given, leaving the others queued. Messages to a down node are lost.
   * Returns the messages delivered.
   */
  deliver(only?: (m: Message) => boolean): Message[] {
    const batch = only === undefined ? this.queue : this.queue.filter(only);
    this.queue = only === undefined ? [] : this.queue.filter((m) => !only(m));
    const out: Message[] = [];
    for (const m of batch) {
      const n = this.nodes.get(m.to);
      if (n === undefined || !n.up) continue;
      n.raft.step(m);
      this.delivered.push(m);
      this.events.push({ kind: 'deliver', message: m });
      out.push(m);
    }
    return out;
  }

  /** Flushes and delivers until quiescent. Returns every message delivered. */
  deliverAll(): Message[] {
    const out: Message[] = [];
    for (let round = 0; ; round++) {
      if (round >= MAX_ROUNDS) throw new Error('deliverAll: no quiescence');
      const any = this.flush();
      if (this.queue.length === 0 && !any) return out;
      out.push(...this.deliver());
    }
  }

  /** Ticks node `id` `n` times (no delivery). */
  tick(id: number, n = 1): void {
    const node = this.node(id);
    for (let i = 0; i < n; i++) if (node.up) node.raft.tick();
  }

  /** `n` rounds of: tick every up node once, then {@link deliverAll}. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const id of this.ids()) {
        const node = this.nodes.get(id)!;
        if (node.up) node.raft.tick();
      }
      this.deliverAll();
    }
  }

  /**
   * With check-quorum, a node that just started ignores votes for an election
   * timeout (its restart guard). This lets that time pass on every up node,
   * discarding what they send meanwhile, and checks that none of them
   * campaigned (its randomized timeout is drawn above the minimum for the
   * fixed seed; if that ever changes, this fails loudly).
   */
  warmUp(): void {
    for (const id of this.ids()) {
      const n = this.nodes.get(id)!;
      if (!n.up) continue;
      const before = n.raft.status();
      for (let i = 0; i < this.configOf(id).electionTimeoutTicks; i++) n.raft.tick();
      const after = n.raft.status();
      if (after.role !== before.role || after.term !== before.term) {
        throw new Error(
          `warmUp: node ${id} campaigned (${after.role}, term ${after.term}); pick another seed`,
        );
      }
    }
    this.flush();
    this.queue = [];
  }

  /** Warms up, makes `id` campaign and delivers until quiescent; checks it won. */
  elect(id: number): void {
    this.warmUp();
    this.raft(id).campaign();
    this.deliverAll();
    const st = this.raft(id).status();
    if (st.role !== 'leader')
      throw new Error(`elect(${id}): ended as ${st.role} in term ${st.term}`);
  }

  /** Proposes `data` on node `id` (no delivery). */
  propose(id: number, data: string): ProposeResult {
    return this.raft(id).propose(bytes(data));
  }

  proposeConfChange(id: number, cc: ConfChange): ProposeResult {
    return this.raft(id).proposeConfChange(cc);
  }

  /** Takes a snapshot on node `id` at its applied index and compacts its log and storage. */
  compact(id: number): Snapshot {
    const n = this.node(id);
    const snap = n.raft.createSnapshot(bytes(JSON.stringify(n.sm)));
    n.storage.compact(snap);
    return snap;
  }

  /** The up leader of the highest term, if any. */
  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const id of this.ids()) {
      const n = this.nodes.get(id)!;
      if (!n.up) continue;
      const st = n.raft.status();
      if (st.role === 'leader' && (best === undefined || st.term > best.term)) {
        best = { id, term: st.term };
      }
    }
    return best?.id;
  }

  /** Terms of the entries of node `id`'s in-memory log, from its first index to its last. */
  logTerms(id: number): number[] {
    const log = this.raft(id).log;
    const out: number[] = [];
    for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(logIndex(i))!);
    return out;
  }

  /** Messages of `type` among `ms` (typed). */
  static only<T extends Message['type']>(
    ms: readonly Message[],
    type: T,
  ): Extract<Message, { type: T }>[] {
    return ms.filter((m): m is Extract<Message, { type: T }> => m.type === type);
  }
}
