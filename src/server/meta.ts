/**
 * The meta range: range 1 of every cluster, replicated on every member. It
 * holds what the nodes must agree on about the cluster itself, as keys of
 * its key-value state machine:
 *
 *   members/<id, 10 digits>  -> {@link MemberRecord} (JSON): who belongs and where it listens
 *   ranges/<id, 10 digits>   -> {@link RangeDescriptor} (JSON): the key span of each data range
 *
 * A new cluster's founders all write the same initial meta state (from the
 * same member list and initial split points) as the applied state at the
 * bootstrap index, so their replicas agree from the first entry on. Later
 * changes (members joining and leaving) are ordinary writes through the
 * meta range's Raft log.
 *
 * User keys never live in the meta range: the data ranges cover the whole
 * user key space, `[""` up to the first split, then split to split, the last
 * one up to the end (`end` null).
 */
import { TesseraError } from '../core/errors.ts';
import type { NodeId, RangeId } from '../core/ids.ts';
import { nodeId, rangeId } from '../core/ids.ts';
import { checkSplitKey, tableRoutingKey } from '../table/routing.ts';

/** The meta range's id. */
export const META_RANGE: RangeId = rangeId(1);
/** Initial split points beyond which a new cluster refuses to start. */
export const INITIAL_SPLITS_MAX = 64;
/** Largest split key, in UTF-8 bytes (the largest user key). */
const SPLIT_KEY_BYTES_MAX = 1024;

/** A member of the cluster and where it listens. */
export interface MemberRecord {
  readonly id: NodeId;
  /** `host:port` of the Raft peer transport. */
  readonly raft: string;
  /** `host:port` of the HTTP API. */
  readonly http: string;
  /** Port of the gRPC API on the HTTP host, if served. */
  readonly grpcPort?: number;
}

/** A data range: the keys `start <= key < end` (end null: to the end of the key space). */
export interface RangeDescriptor {
  readonly id: RangeId;
  readonly start: string;
  readonly end: string | null;
  /** Bumped when the span or the replica set changes (splits and merges: later). */
  readonly epoch: number;
}

const MEMBERS_PREFIX = 'members/';
const TABLES_PREFIX = 'tables/';
const RANGES_PREFIX = 'ranges/';
const ID_DIGITS = 10;

/** The meta key of member `id`. */
export const memberKey = (id: number): string =>
  MEMBERS_PREFIX + String(id).padStart(ID_DIGITS, '0');
/** The meta key of range `id`'s descriptor. */
export const rangeKey = (id: number): string => RANGES_PREFIX + String(id).padStart(ID_DIGITS, '0');
/** The meta key of table `name`'s record. */
export const tableKey = (name: string): string => TABLES_PREFIX + name;
/** Key spans of the record kinds, for scans of the meta range. */
export const MEMBER_KEYS = { start: MEMBERS_PREFIX, end: 'members0' } as const;
export const TABLE_KEYS = { start: TABLES_PREFIX, end: 'tables0' } as const;

/**
 * A table as the meta range records it: its schema and its id, the key
 * prefix of its rows (chosen at create, so a table created again after a
 * drop never sees the old rows).
 */
export interface TableRecord {
  readonly id: number;
  readonly schema: unknown;
}

/** Where tables live among the ranges: see src/table/routing.ts. */
export { tableRoutingKey };
export const RANGE_KEYS = { start: RANGES_PREFIX, end: 'ranges0' } as const;

/**
 * The data ranges of a new cluster split at `splits` (ids 2, 3, ...).
 * Throws INVALID_ARGUMENT unless the splits are non-empty, distinct, sorted
 * by byte order and within the limits, and those inside a table's rows sit at
 * partition keys (src/table/routing.ts).
 */
export function initialDescriptors(splits: readonly string[]): RangeDescriptor[] {
  if (splits.length > INITIAL_SPLITS_MAX) {
    throw new TesseraError('INVALID_ARGUMENT', `at most ${INITIAL_SPLITS_MAX} initial splits`);
  }
  for (const [i, s] of splits.entries()) {
    if (s.length === 0 || Buffer.byteLength(s) > SPLIT_KEY_BYTES_MAX) {
      throw new TesseraError('INVALID_ARGUMENT', `split key "${s}" is empty or too long`);
    }
    if (i > 0 && Buffer.compare(Buffer.from(splits[i - 1]!), Buffer.from(s)) >= 0) {
      throw new TesseraError('INVALID_ARGUMENT', 'split keys must be distinct and in byte order');
    }
    checkSplitKey(s);
  }
  const bounds = ['', ...splits];
  return bounds.map((start, i) => ({
    id: rangeId(i + 2),
    start,
    end: bounds[i + 1] ?? null,
    epoch: 1,
  }));
}

/** The meta range's initial key-value pairs: the founders and the data ranges. */
export function initialMetaPairs(
  members: readonly MemberRecord[],
  ranges: readonly RangeDescriptor[],
): [key: string, value: string][] {
  return [
    ...members.map((m): [string, string] => [memberKey(m.id), encodeMember(m)]),
    ...ranges.map((r): [string, string] => [rangeKey(r.id), JSON.stringify(r)]),
  ];
}

/** The JSON form of a member record stored in the meta range. */
export function encodeMember(m: MemberRecord): string {
  return JSON.stringify({
    id: m.id,
    raft: m.raft,
    http: m.http,
    ...(m.grpcPort !== undefined ? { grpcPort: m.grpcPort } : {}),
  });
}

/** Parses a stored member record; the meta range holds only what this module wrote. */
export function decodeMember(value: string): MemberRecord {
  const v = JSON.parse(value) as MemberRecord;
  return { ...v, id: nodeId(v.id) };
}

/** Parses a stored range descriptor. */
export function decodeDescriptor(value: string): RangeDescriptor {
  const v = JSON.parse(value) as RangeDescriptor;
  return { ...v, id: rangeId(v.id) };
}

/** Byte order of two keys, as the state engine orders them. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * The data ranges sorted by start key, answering which range holds a key.
 * Built from the meta range's descriptors, which cover the key space
 * without gaps or overlaps (checked).
 */
export class RangeMap {
  readonly ranges: readonly RangeDescriptor[];

  constructor(descriptors: readonly RangeDescriptor[]) {
    const sorted = [...descriptors].sort((a, b) => compareKeys(a.start, b.start));
    for (const [i, r] of sorted.entries()) {
      const next = sorted[i + 1];
      const fits =
        (i > 0 || r.start === '') &&
        (next === undefined ? r.end === null : r.end !== null && r.end === next.start);
      if (!fits)
        throw new TesseraError('INTERNAL', `range descriptors leave a gap at range ${r.id}`);
    }
    this.ranges = sorted;
  }

  /** The range holding `key`, or undefined when there are no ranges (yet). */
  lookup(key: string): RangeDescriptor | undefined {
    let lo = 0;
    let hi = this.ranges.length - 1;
    let found: RangeDescriptor | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (compareKeys(r.start, key) <= 0) {
        found = r;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * The range holding the greatest keys below `key` (the one whose start is
   * below `key`), or undefined when there is none.
   */
  lookupBefore(key: string): RangeDescriptor | undefined {
    let found: RangeDescriptor | undefined;
    for (const r of this.ranges) {
      if (compareKeys(r.start, key) >= 0) break;
      found = r;
    }
    return found;
  }

  /** The descriptor of range `id`, if it is a data range. */
  byId(id: RangeId): RangeDescriptor | undefined {
    return this.ranges.find((r) => r.id === id);
  }
}
