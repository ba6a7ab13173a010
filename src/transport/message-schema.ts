/**
 * Shape validation of decoded wire data. Bytes from the network are
 * untrusted: msgpack decodes them into arbitrary values (maps, arrays,
 * dates, extension objects), and nothing of that may reach the Raft core
 * unless it has exactly the shape of a {@link Message}. Every parser here
 * either returns a freshly built, well-typed value holding only the known
 * fields, or throws a `TesseraError` with code `INVALID_ARGUMENT` naming the
 * offending path. Unknown extra fields are ignored (forward compatibility).
 */
import { TesseraError } from '../core/errors.ts';
import { logIndex, nodeId, rangeId, term } from '../core/ids.ts';
import type {
  ConfChange,
  ConfChangeStep,
  ConfState,
  Entry,
  EntryType,
  Message,
  Snapshot,
} from '../raft/types.ts';
import type { NodeId, RangeId } from '../core/ids.ts';

/** One Raft message addressed to one range (Raft group) on the receiving node. */
export interface Envelope {
  readonly range: RangeId;
  readonly msg: Message;
}

/** A decoded plain object's fields, not yet checked. */
export type Fields = Readonly<Record<string, unknown>>;

/** Throws the INVALID_ARGUMENT error every parser uses. */
export function malformed(path: string, what: string): never {
  throw new TesseraError('INVALID_ARGUMENT', `malformed frame: ${path} ${what}`);
}

/** `value` as a plain object (not an array, a byte string, a date or an extension type). */
export function fields(value: unknown, path: string): Fields {
  if (typeof value !== 'object' || value === null) malformed(path, 'is not an object');
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) malformed(path, 'is not a plain object');
  return value as Fields;
}

/** A non-negative safe integer (ids, terms, indexes). */
export function uint(o: Fields, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    malformed(`${path}.${key}`, 'is not a non-negative integer');
  }
  return v;
}

/** A safe integer of either sign. */
function int(o: Fields, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    malformed(`${path}.${key}`, 'is not an integer');
  return v;
}

function bool(o: Fields, key: string, path: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') malformed(`${path}.${key}`, 'is not a boolean');
  return v;
}

/** An optional boolean: absent (or undefined) stays absent, so a message round-trips unchanged. */
function optBool(o: Fields, key: string, path: string): { [k: string]: boolean } {
  return o[key] === undefined ? {} : { [key]: bool(o, key, path) };
}

function str(o: Fields, key: string, path: string): string {
  const v = o[key];
  if (typeof v !== 'string') malformed(`${path}.${key}`, 'is not a string');
  return v;
}

/** A byte string, returned as a plain `Uint8Array` view (msgpackr yields Buffers). */
export function bytes(o: Fields, key: string, path: string): Uint8Array {
  const v = o[key];
  if (!(v instanceof Uint8Array)) malformed(`${path}.${key}`, 'is not a byte string');
  if (Object.getPrototypeOf(v) === Uint8Array.prototype) return v;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function list<T>(o: Fields, key: string, path: string, parse: (v: unknown, p: string) => T): T[] {
  const v = o[key];
  if (!Array.isArray(v)) malformed(`${path}.${key}`, 'is not an array');
  return v.map((item: unknown, i) => parse(item, `${path}.${key}[${i}]`));
}

function nodeAt(v: unknown, path: string): NodeId {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    malformed(path, 'is not a node id');
  }
  return nodeId(v);
}

function parseConfChangeStep(value: unknown, path: string): ConfChangeStep {
  const o = fields(value, path);
  const type = o['type'];
  const node = nodeId(uint(o, 'node', path));
  if (type === 'add-voter' || type === 'add-learner' || type === 'remove-node') {
    return { type, node };
  }
  return malformed(`${path}.type`, 'is not a known conf change step');
}

function parseConfChange(value: unknown, path: string): ConfChange {
  const o = fields(value, path);
  if (o['kind'] === 'leave-joint') return { kind: 'leave-joint' };
  if (o['kind'] === 'change')
    return { kind: 'change', steps: list(o, 'steps', path, parseConfChangeStep) };
  return malformed(`${path}.kind`, 'is not a known conf change kind');
}

function parseEntry(value: unknown, path: string): Entry {
  const o = fields(value, path);
  const type = o['type'];
  if (type !== 'normal' && type !== 'conf-change')
    malformed(`${path}.type`, 'is not an entry type');
  const entry: Entry = {
    term: term(uint(o, 'term', path)),
    index: logIndex(uint(o, 'index', path)),
    type: type as EntryType,
    data: bytes(o, 'data', path),
  };
  const cc = o['confChange'];
  return cc === undefined
    ? entry
    : { ...entry, confChange: parseConfChange(cc, `${path}.confChange`) };
}

function parseConfState(value: unknown, path: string): ConfState {
  const o = fields(value, path);
  return {
    voters: list(o, 'voters', path, nodeAt),
    votersOutgoing: list(o, 'votersOutgoing', path, nodeAt),
    learners: list(o, 'learners', path, nodeAt),
  };
}

function parseSnapshot(value: unknown, path: string): Snapshot {
  const o = fields(value, path);
  const meta = fields(o['meta'], `${path}.meta`);
  return {
    meta: {
      index: logIndex(uint(meta, 'index', `${path}.meta`)),
      term: term(uint(meta, 'term', `${path}.meta`)),
      conf: parseConfState(meta['conf'], `${path}.meta.conf`),
    },
    data: bytes(o, 'data', path),
  };
}

/** Parses one {@link Message}; see the module comment for the contract. */
export function parseMessage(value: unknown, path = 'msg'): Message {
  const o = fields(value, path);
  const base = {
    from: nodeId(uint(o, 'from', path)),
    to: nodeId(uint(o, 'to', path)),
    term: term(uint(o, 'term', path)),
  };
  const type = o['type'];
  switch (type) {
    case 'app':
      return {
        ...base,
        type,
        index: logIndex(uint(o, 'index', path)),
        logTerm: term(uint(o, 'logTerm', path)),
        entries: list(o, 'entries', path, parseEntry),
        commit: logIndex(uint(o, 'commit', path)),
      };
    case 'app-resp':
      return {
        ...base,
        type,
        index: logIndex(uint(o, 'index', path)),
        reject: bool(o, 'reject', path),
        rejectHint: logIndex(uint(o, 'rejectHint', path)),
        logTerm: term(uint(o, 'logTerm', path)),
      };
    case 'vote':
      return {
        ...base,
        type,
        pre: bool(o, 'pre', path),
        lastIndex: logIndex(uint(o, 'lastIndex', path)),
        lastTerm: term(uint(o, 'lastTerm', path)),
        transfer: bool(o, 'transfer', path),
      };
    case 'vote-resp':
      return { ...base, type, pre: bool(o, 'pre', path), reject: bool(o, 'reject', path) };
    case 'heartbeat':
      return {
        ...base,
        type,
        commit: logIndex(uint(o, 'commit', path)),
        context: str(o, 'context', path),
        sentTick: int(o, 'sentTick', path),
        ...optBool(o, 'quiesce', path),
      };
    case 'heartbeat-resp':
      return {
        ...base,
        type,
        context: str(o, 'context', path),
        sentTick: int(o, 'sentTick', path),
        ...optBool(o, 'quiesce', path),
      };
    case 'snap':
      return { ...base, type, snapshot: parseSnapshot(o['snapshot'], `${path}.snapshot`) };
    case 'timeout-now':
      return { ...base, type };
    case 'read-index':
      return { ...base, type, context: str(o, 'context', path) };
    case 'read-index-resp':
      return {
        ...base,
        type,
        context: str(o, 'context', path),
        index: logIndex(uint(o, 'index', path)),
        reject: bool(o, 'reject', path),
      };
    default:
      // Not assertNever: an unknown type from the network is operational, not a bug.
      return malformed(`${path}.type`, 'is not a known message type');
  }
}

/** Parses one {@link Envelope} `{ range, msg }`. */
export function parseEnvelope(value: unknown, path = 'envelope'): Envelope {
  const o = fields(value, path);
  return { range: rangeId(uint(o, 'range', path)), msg: parseMessage(o['msg'], `${path}.msg`) };
}

/** Upper bound on the cluster id of a {@link Hello}, in UTF-16 code units. */
export const CLUSTER_ID_CHARS_MAX = 256;

/**
 * The handshake: the first frame on every connection names the sending node
 * and its cluster, so a receiver can refuse a node of another cluster (a
 * misconfigured address book) before any Raft message is delivered.
 */
export interface Hello {
  /** The node that opened the connection and sends on it. */
  readonly node: NodeId;
  /** The sender's cluster id; a receiver closes the connection unless it equals its own. */
  readonly cluster: string;
  /** Wire protocol version of the sender; see {@link PROTOCOL_VERSION}. */
  readonly version: number;
}

/**
 * The wire protocol version this code speaks. Version 2 added snapshot chunk
 * and keepalive frames (see frame.ts); a receiver refuses any other version.
 */
export const PROTOCOL_VERSION = 2;

/** Parses the handshake payload `{ hello: { node, cluster, version } }`. */
export function parseHello(value: unknown): Hello {
  const hello = fields(fields(value, 'payload')['hello'], 'hello');
  const cluster = str(hello, 'cluster', 'hello');
  if (cluster.length > CLUSTER_ID_CHARS_MAX) malformed('hello.cluster', 'is too long');
  return {
    node: nodeId(uint(hello, 'node', 'hello')),
    cluster,
    version: uint(hello, 'version', 'hello'),
  };
}
