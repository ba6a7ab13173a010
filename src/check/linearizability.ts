/**
 * A linearizability checker for key-value histories.
 *
 * The search is Wing & Gong's algorithm with Lowe's improvements, as in the
 * "porcupine" checker: operations are linearized just in time (an operation is
 * only tried once its call has happened, and the search backtracks as soon as
 * some operation's return is reached before it was linearized), and every
 * (set of linearized operations, register value) configuration is cached so no
 * configuration is explored twice. One partial-order reduction on top: a
 * pending get that reads the current value is linearized first and alone (it
 * could be moved there in any linearization). Keys are independent registers,
 * so the history is partitioned by key and each sub-history is checked on its
 * own (P-compositionality, Herlihy & Wing): a history is linearizable iff
 * every per-key sub-history is.
 *
 * Pure and synchronous: no I/O, no timers, no randomness.
 */

import { assert, assertNever } from '../core/assert.ts';
import type { KvOperation } from './history.ts';

/** Outcome of {@link checkLinearizable}. */
export interface LinearizabilityResult {
  verdict: 'ok' | 'violation' | 'unknown';
  /** Keys whose sub-history is not linearizable (or undecided). */
  badKeys: string[];
  /** Human-readable explanation of the first bad key: the ops involved, with times. */
  message: string;
  /** Total search steps taken (for benchmarks). */
  steps: number;
}

/** Options of {@link checkLinearizable}. */
export interface LinearizabilityOptions {
  /**
   * Search budget per key, in steps (one step = one visit of a call or return
   * entry). A key whose search exceeds it is reported as undecided
   * (`verdict: 'unknown'`). Default {@link DEFAULT_MAX_STEPS}.
   */
  maxSteps?: number;
}

/** Default per-key search budget of {@link checkLinearizable}. */
export const DEFAULT_MAX_STEPS = 5_000_000;

/**
 * Decides whether a history of key-value operations is linearizable, i.e.
 * whether every operation can be given a single instant inside its
 * `[call, return]` interval such that, executed one at a time in the order of
 * those instants, each key behaves as a register that starts absent.
 *
 * Semantics of the register operations (per key):
 * - `put` sets the value (a `null` value makes the key absent, like `delete`);
 * - `delete` makes the key absent;
 * - `get` with `ok: true` must return the value at its linearization point
 *   (`output: null` = absent);
 * - `cas` with `ok: true` requires the current value to equal `expect`
 *   (`null` = absent) and sets `value`.
 *
 * Outcomes:
 * - `ok: false` operations definitely had no effect and observed nothing:
 *   they are ignored (a failed cas therefore constrains nothing either).
 * - `ok: null` (unknown outcome, e.g. a timeout) is treated as returning at
 *   +infinity, whatever `return` says: a put/delete/cas with unknown outcome
 *   may take effect at any instant after its call, or never (which is the
 *   same as "after everything"); an unknown cas that takes effect must still
 *   find `expect`. A `get` with unknown outcome constrains nothing and is
 *   ignored.
 * - `ok: true` with `return: null` took effect at some unknown instant after
 *   its call (its return is +infinity).
 *
 * Time ties: an operation returning at the same instant another one is called
 * is treated as concurrent with it (calls sort before returns), so equal
 * timestamps never produce a spurious violation.
 *
 * Before searching, unknown-outcome writes whose written value no remaining
 * operation of the key can observe (no get returns it, no cas expects it),
 * and unknown cas operations whose `expect` no operation can produce, are
 * dropped: such an operation can always be removed from a linearization
 * without changing what anybody observed, so the verdict is unchanged while
 * the search avoids their ever-open intervals. A successful get or cas that
 * observes a value no remaining write of its key produces is reported as a
 * violation without searching. During the search, a pending get that reads
 * the current value is linearized before anything else and its alternatives
 * are not explored (it changes nothing, and every operation that must precede
 * it is already linearized, so any linearization can be reordered that way).
 *
 * Verdict: `'violation'` if some key's sub-history is not linearizable (even
 * if other keys are undecided), else `'unknown'` if some key exceeded
 * `maxSteps`, else `'ok'`. `badKeys` lists the non-linearizable keys first,
 * then the undecided ones, each group in order of first appearance in the
 * history; `message` explains `badKeys[0]` (for a violation: the longest
 * linearizable prefix the search found, the value it leaves, and why none of
 * the pending operations can go next).
 *
 * Complexity: deciding linearizability is NP-complete in general. Per key
 * with `n` operations of which at most `c` are ever pending at once, the
 * search visits at most O(n * 2^c * v) configurations (v = distinct values)
 * and does O(n / 32) work per cached configuration; histories of a few
 * thousand operations with a dozen concurrent clients check in milliseconds.
 * Unknown-outcome operations stay pending forever, so each one that survives
 * the pruning above widens `c` for the rest of its key's history. Memory is
 * O(configurations * n / 32) for the cache. `maxSteps` bounds the time per
 * key.
 *
 * @throws AssertionError if an operation is malformed: non-finite `call`, or
 *   `return` before `call`, or an unknown `op`.
 */
export function checkLinearizable(
  history: readonly KvOperation[],
  options?: LinearizabilityOptions,
): LinearizabilityResult {
  const maxSteps = options?.maxSteps ?? DEFAULT_MAX_STEPS;
  assert(maxSteps >= 0, () => `maxSteps must be non-negative, got ${maxSteps}`);

  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    validate(op);
    let ops = byKey.get(op.key);
    if (ops === undefined) {
      ops = [];
      byKey.set(op.key, ops);
    }
    ops.push(op);
  }

  let steps = 0;
  const violations: KeyResult[] = [];
  const undecided: KeyResult[] = [];
  for (const [key, ops] of byKey) {
    const r = checkKey(key, ops, maxSteps);
    steps += r.steps;
    if (r.verdict === 'violation') violations.push(r);
    else if (r.verdict === 'unknown') undecided.push(r);
  }

  const bad = [...violations, ...undecided];
  const first = bad[0];
  if (first === undefined) {
    return {
      verdict: 'ok',
      badKeys: [],
      message: `linearizable: ${history.length} operations on ${byKey.size} keys (${steps} search steps)`,
      steps,
    };
  }
  let message = first.message;
  if (bad.length > 1) {
    const others = bad.slice(1).map((r) => `${JSON.stringify(r.key)} (${r.verdict})`);
    message += `\n${bad.length - 1} more bad key(s): ${others.join(', ')}`;
  }
  return {
    verdict: violations.length > 0 ? 'violation' : 'unknown',
    badKeys: bad.map((r) => r.key),
    message,
    steps,
  };
}

// ---------------------------------------------------------------------------
// Per-key search

interface KeyResult {
  key: string;
  verdict: 'ok' | 'violation' | 'unknown';
  message: string;
  steps: number;
}

const PUT = 0;
const DELETE = 1;
const GET = 2;
const CAS = 3;

/** Interned register values: 0 is "absent", 1.. are the distinct strings of one key. */
const ABSENT = 0;

/** Sentinel "no entry" in the entry linked list. */
const NIL = -1;

function validate(op: KvOperation): void {
  assert(Number.isFinite(op.call), () => `operation has a non-finite call time: ${fmtOp(op)}`);
  assert(
    op.return === null || op.return >= op.call /* false for NaN too */,
    () => `operation returns before its call (or at NaN): ${fmtOp(op)}`,
  );
  switch (op.op) {
    case 'put':
    case 'get':
    case 'delete':
    case 'cas':
      return;
    default:
      assertNever(op.op, 'operation kind');
  }
}

/**
 * Does `op` take effect / observe anything? Failed operations and gets with
 * unknown outcome constrain nothing.
 */
function isRelevant(op: KvOperation): boolean {
  if (op.ok === false) return false;
  if (op.ok === null && op.op === 'get') return false;
  return true;
}

function checkKey(key: string, allOps: readonly KvOperation[], maxSteps: number): KeyResult {
  // ---- Intern values and compile ops into typed arrays.
  const intern = new Map<string, number>();
  const names: (string | null)[] = [null];
  const id = (v: string | null): number => {
    if (v === null) return ABSENT;
    let n = intern.get(v);
    if (n === undefined) {
      n = names.length;
      names.push(v);
      intern.set(v, n);
    }
    return n;
  };

  let ops = allOps.filter(isRelevant);
  const kindOf = (o: KvOperation): number =>
    o.op === 'put' ? PUT : o.op === 'delete' ? DELETE : o.op === 'get' ? GET : CAS;
  /** The value an op writes (put / delete / cas), or -1 for a get. */
  const writes = (o: KvOperation): number =>
    o.op === 'put' || o.op === 'cas' ? id(o.value) : o.op === 'delete' ? ABSENT : -1;
  /** The value an op observes (get output / cas expect), or -1 for blind writes. */
  const observes = (o: KvOperation): number =>
    o.op === 'get' ? id(o.output) : o.op === 'cas' ? id(o.expect) : -1;

  // ---- Prune unknown-outcome writes that can be removed from any
  // linearization without changing what anybody observed (see TSDoc), to a
  // fixpoint: dropping an unknown cas can make other writes unobserved.
  for (;;) {
    const observed = new Set<number>();
    const producible = new Set<number>([ABSENT]);
    for (const o of ops) {
      const r = observes(o);
      if (r >= 0) observed.add(r);
      const w = writes(o);
      if (w >= 0) producible.add(w);
    }
    const kept = ops.filter(
      (o) =>
        o.ok === true ||
        (observed.has(writes(o)) && (o.op !== 'cas' || producible.has(id(o.expect)))),
    );
    if (kept.length === ops.length) {
      // Known ops observing a value nobody writes: a violation found without search.
      for (const o of ops) {
        if (o.ok === true && observes(o) >= 0 && !producible.has(observes(o))) {
          const what = o.op === 'get' ? 'read' : 'expected';
          return {
            key,
            verdict: 'violation',
            steps: 0,
            message:
              `key ${JSON.stringify(key)}: history is not linearizable.\n` +
              `  ${fmtOp(o)}\n` +
              `It ${what} ${fmtVal(o.op === 'get' ? o.output : o.expect)}, but no put or cas on this ` +
              `key that took (or may have taken) effect wrote that value.`,
          };
        }
      }
      break;
    }
    ops = kept;
  }

  const n = ops.length;
  const kind = new Uint8Array(n);
  const argA = new Int32Array(n); // get: output; cas: expect
  const argB = new Int32Array(n); // put / cas: value written
  const known = new Uint8Array(n); // 1: must be linearized (ok === true)
  let knownCount = 0;
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    kind[i] = kindOf(o);
    argA[i] = Math.max(0, observes(o));
    argB[i] = Math.max(0, writes(o));
    if (o.ok === true) {
      known[i] = 1;
      knownCount++;
    }
  }
  if (knownCount === 0) return { key, verdict: 'ok', message: '', steps: 0 };

  // ---- Entries: one call entry per op, plus a return entry per known op
  // (unknown ops never have to be linearized, so they have no deadline).
  // Entry 0 is the list head; entries 1..m are sorted by time, calls before
  // returns on ties, then by op index.
  const evTime: number[] = [];
  const evOp: number[] = [];
  const evCall: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    evTime.push(o.call);
    evOp.push(i);
    evCall.push(true);
    if (known[i]) {
      evTime.push(o.return ?? Infinity);
      evOp.push(i);
      evCall.push(false);
    }
  }
  const order = evTime.map((_, j) => j);
  order.sort(
    (x, y) =>
      evTime[x]! - evTime[y]! || Number(evCall[y]!) - Number(evCall[x]!) || evOp[x]! - evOp[y]!,
  );
  const m = order.length;
  const entryOp = new Int32Array(m + 1);
  const isCall = new Uint8Array(m + 1);
  const match = new Int32Array(m + 1); // call entry -> its return entry, or NIL
  const next = new Int32Array(m + 1);
  const prev = new Int32Array(m + 1);
  const callEntryOf = new Int32Array(n);
  match.fill(NIL);
  for (let e = 1; e <= m; e++) {
    const j = order[e - 1]!;
    const op = evOp[j]!;
    entryOp[e] = op;
    if (evCall[j]) {
      isCall[e] = 1;
      callEntryOf[op] = e;
    } else {
      match[callEntryOf[op]!] = e;
    }
  }
  for (let e = 0; e <= m; e++) {
    next[e] = e < m ? e + 1 : NIL;
    prev[e] = e - 1;
  }

  // ---- Search state.
  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  const zobrist = new Int32Array(n);
  for (let i = 0; i < n; i++) zobrist[i] = mix32(i + 1);
  const cache = new ConfigCache(words);
  const stackEntry = new Int32Array(n);
  const stackState = new Int32Array(n);
  // Longest linearization found, for the explanation (kept in sync lazily).
  const best = new Int32Array(n);
  let bestDepth = 0;
  let bestState = ABSENT;
  let synced = 0; // best[0..synced) == stackEntry[0..synced)

  let depth = 0;
  let state = ABSENT;
  let hash = 0;
  let knownLeft = knownCount;
  let steps = 0;
  /**
   * Where to start trying candidates in a new configuration: a pending get
   * that reads the current value if there is one (it alone needs trying, see
   * the backtracking below), else the first entry.
   */
  const start = (): number => {
    for (let e = next[0]!; e !== NIL && isCall[e]; e = next[e]!) {
      const op = entryOp[e]!;
      if (kind[op] === GET && argA[op] === state) return e;
    }
    return next[0]!;
  };
  let entry = start();

  for (;;) {
    if (knownLeft === 0) return { key, verdict: 'ok', message: '', steps };
    if (steps >= maxSteps) {
      return {
        key,
        verdict: 'unknown',
        steps,
        message:
          `key ${JSON.stringify(key)}: undecided, search stopped after ${steps} steps ` +
          `(maxSteps ${maxSteps}); ${n} operations, ${knownCount} of them known to have completed.`,
      };
    }
    steps++;
    assert(entry !== NIL, 'linearizability search ran off the end of the history');
    if (isCall[entry]) {
      const op = entryOp[entry]!;
      const k = kind[op]!;
      let ns = -1;
      if (k === PUT) ns = argB[op]!;
      else if (k === DELETE) ns = ABSENT;
      else if (k === GET) ns = state === argA[op] ? state : -1;
      else ns = state === argA[op] ? argB[op]! : -1;
      if (ns >= 0) {
        const w = op >>> 5;
        const bit = 1 << (op & 31);
        bits[w]! |= bit;
        const h = hash ^ zobrist[op]!;
        if (cache.add(h ^ mix32(ns ^ 0x5bd1e995), bits, ns)) {
          stackEntry[depth] = entry;
          stackState[depth] = state;
          if (synced > depth) synced = depth;
          depth++;
          if (depth > bestDepth) {
            for (let d = synced; d < depth; d++) best[d] = stackEntry[d]!;
            synced = depth;
            bestDepth = depth;
            bestState = ns;
          }
          state = ns;
          hash = h;
          if (known[op]) knownLeft--;
          // Lift the call and its return out of the list.
          let p = prev[entry]!;
          let q = next[entry]!;
          next[p] = q;
          if (q !== NIL) prev[q] = p;
          const r = match[entry]!;
          if (r !== NIL) {
            p = prev[r]!;
            q = next[r]!;
            next[p] = q;
            if (q !== NIL) prev[q] = p;
          }
          entry = start();
          continue;
        }
        bits[w]! &= ~bit;
        // Already explored from here: if it is a get, this configuration
        // fails too (see the backtracking below).
        if (k === GET) {
          entry = match[entry]!;
          continue;
        }
      }
      entry = next[entry]!;
    } else {
      // An operation must have been linearized by now and was not: backtrack.
      if (depth === 0) {
        return {
          key,
          verdict: 'violation',
          steps,
          message: explain(
            key,
            ops,
            best.subarray(0, bestDepth),
            bestState,
            entryOp,
            isCall,
            m,
            names,
          ),
        };
      }
      depth--;
      const top = stackEntry[depth]!;
      const op = entryOp[top]!;
      state = stackState[depth]!;
      hash ^= zobrist[op]!;
      bits[op >>> 5]! &= ~(1 << (op & 31));
      if (known[op]) knownLeft++;
      // Unlift, in the reverse order of the lift.
      const r = match[top]!;
      if (r !== NIL) {
        next[prev[r]!] = r;
        const q = next[r]!;
        if (q !== NIL) prev[q] = r;
      }
      next[prev[top]!] = top;
      const q = next[top]!;
      if (q !== NIL) prev[q] = top;
      // A get that matched the value could have been linearized first from
      // the parent configuration in any linearization (it changes nothing and
      // every operation that must precede it is already linearized), so if
      // the parent plus the get fails, the parent fails too: skip its other
      // alternatives by resuming at the get's own return entry.
      entry = kind[op] === GET ? match[top]! : next[top]!;
    }
  }
}

/**
 * The set of visited (linearized set, value) configurations: an
 * open-addressing hash table over a flat pool of bitset words, so a visit
 * allocates nothing but amortized pool growth.
 */
class ConfigCache {
  private readonly stride: number;
  private pool: Uint32Array;
  private hashes: Int32Array;
  private table: Int32Array; // entry index + 1; 0 = empty
  private count = 0;

  constructor(private readonly words: number) {
    this.stride = words + 1;
    this.pool = new Uint32Array(this.stride * 1024);
    this.hashes = new Int32Array(1024);
    this.table = new Int32Array(2048);
  }

  /** Adds the configuration; false if it was already present. */
  add(hash: number, bits: Uint32Array, state: number): boolean {
    const words = this.words;
    const stride = this.stride;
    const mask = this.table.length - 1;
    let slot = hash & mask;
    for (;;) {
      const t = this.table[slot]!;
      if (t === 0) break;
      const e = t - 1;
      if (this.hashes[e] === hash) {
        const base = e * stride;
        const pool = this.pool;
        if (pool[base + words] === state) {
          let same = true;
          for (let w = 0; w < words; w++) {
            if (pool[base + w] !== bits[w]) {
              same = false;
              break;
            }
          }
          if (same) return false;
        }
      }
      slot = (slot + 1) & mask;
    }
    const e = this.count++;
    if (e >= this.hashes.length) this.growPool();
    this.pool.set(bits, e * stride);
    this.pool[e * stride + words] = state;
    this.hashes[e] = hash;
    this.table[slot] = e + 1;
    if (this.count * 2 > this.table.length) this.rehash();
    return true;
  }

  private growPool(): void {
    const cap = this.hashes.length * 2;
    const pool = new Uint32Array(cap * this.stride);
    pool.set(this.pool);
    this.pool = pool;
    const hashes = new Int32Array(cap);
    hashes.set(this.hashes);
    this.hashes = hashes;
  }

  private rehash(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let e = 0; e < this.count; e++) {
      let slot = this.hashes[e]! & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = e + 1;
    }
    this.table = table;
  }
}

/** A 32-bit finalizer (murmur3 fmix32): a cheap, well-spread hash of an integer. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) | 0;
}

// ---------------------------------------------------------------------------
// Explanations

const MAX_PREFIX_SHOWN = 12;

/**
 * Explains a violation from the longest linearization the search found: the
 * prefix, the value it leaves, and the pending operations, none of which can
 * be linearized next (had one been accepted, the linearization would have
 * been longer), up to the first operation that must have completed by then.
 */
function explain(
  key: string,
  ops: readonly KvOperation[],
  bestEntries: Int32Array,
  state: number,
  entryOp: Int32Array,
  isCall: Uint8Array,
  m: number,
  names: readonly (string | null)[],
): string {
  const done = new Set<number>();
  for (const e of bestEntries) done.add(entryOp[e]!);
  const lines = [`key ${JSON.stringify(key)}: history is not linearizable.`];
  const value = fmtVal(names[state] ?? null);
  if (bestEntries.length === 0) {
    lines.push('No operation can be linearized first: the key starts absent.');
  } else {
    lines.push(
      `Longest linearizable prefix found (${bestEntries.length} of ${ops.length} operations considered), ` +
        `leaving the value ${value}:`,
    );
    const skip = Math.max(0, bestEntries.length - MAX_PREFIX_SHOWN);
    if (skip > 0) lines.push(`  ... ${skip} earlier operations`);
    for (let i = skip; i < bestEntries.length; i++) {
      lines.push(`  ${fmtOp(ops[entryOp[bestEntries[i]!]!]!)}`);
    }
  }
  lines.push(`None of the pending operations can take effect next (value ${value}):`);
  const current = names[state] ?? null;
  for (let e = 1; e <= m; e++) {
    const op = entryOp[e]!;
    if (done.has(op)) continue;
    const o = ops[op]!;
    if (isCall[e]) {
      const why =
        o.op === 'get'
          ? `: would read ${value}`
          : o.op === 'cas' && o.expect !== current
            ? `: expects ${fmtVal(o.expect)}`
            : '';
      lines.push(`  ${fmtOp(o)}${why}`);
    } else {
      lines.push(
        `The first of them to return must have taken effect by t=${o.return ?? 'infinity'}: ` +
          fmtOp(o),
      );
      break;
    }
  }
  return lines.join('\n');
}

function fmtVal(v: string | null): string {
  return v === null ? 'absent' : JSON.stringify(v);
}

function fmtOp(o: KvOperation): string {
  let what: string;
  switch (o.op) {
    case 'put':
      what = `put ${fmtVal(o.value)}`;
      break;
    case 'delete':
      what = 'delete';
      break;
    case 'get':
      what = `get -> ${o.ok === true ? fmtVal(o.output) : '?'}`;
      break;
    case 'cas':
      what = `cas ${fmtVal(o.expect)} -> ${fmtVal(o.value)}`;
      break;
    default:
      what = String(o.op);
  }
  const outcome = o.ok === true ? '' : o.ok === false ? ' (failed)' : ' (outcome unknown)';
  return `client ${o.client} ${what} on ${JSON.stringify(o.key)} [${o.call}, ${o.return ?? '?'}]${outcome}`;
}
