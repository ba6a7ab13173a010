/**
 * The log engine's record codec. Every record is framed, checksummed and
 * self-describing; docs/storage.md ("Log engine") draws the same layout.
 *
 * ```
 * offset  size  field
 *      0     4  length    u32 LE: bytes after this 8-byte prefix (33 - 8 + body)
 *      4     4  crc32c    u32 LE: CRC-32C of bytes [8, 8 + length)
 *      8     1  type      1 entry, 2 hard state, 3 snapshot marker, 4 compaction marker
 *      9     8  group     u64 LE: the RangeId
 *     17     8  index     u64 LE: entry index | hard state commit | snapshot index | compaction index
 *     25     8  term      u64 LE: entry term  | hard state term   | snapshot term  | 0
 *     33     …  body      per type, below
 * ```
 *
 * Bodies (u64 and u32 little-endian):
 * - entry: u8 entry type (0 normal, 1 conf-change), u8 flags (bit 0: has a
 *   ConfChange), u32 data length, data, then the ConfChange if flagged:
 *   u8 kind (0 change, 1 leave-joint); for a change u32 step count and per
 *   step u8 type (0 add-voter, 1 add-learner, 2 remove-node) and u64 node.
 * - hard state: u64 vote.
 * - snapshot marker: u8 flags (bit 0: keep the entries that follow the
 *   marker), then the ConfState: voters, outgoing voters, learners, each a
 *   u32 count and that many u64 node ids.
 * - compaction marker: empty.
 *
 * The checksum covers everything after itself, so a flipped bit in the type,
 * group, index, term or body is caught; the length is checked against
 * {@link RECORD_BYTES_MAX} before it is trusted.
 */
import { assert, assertNever } from '../../core/assert.ts';
import { crc32c } from '../../core/crc32c.ts';
import type { LogIndex, NodeId, RangeId, Term } from '../../core/ids.ts';
import { logIndex, nodeId, rangeId, term } from '../../core/ids.ts';
import type {
  ConfChange,
  ConfChangeStep,
  ConfState,
  Entry,
  HardState,
  SnapshotMeta,
} from '../../raft/types.ts';
import { ByteReader, ByteWriter, DecodeError } from './bytes.ts';

/** Bytes of the length and checksum prefix. */
export const RECORD_PREFIX_BYTES = 8;
/** Bytes of the fixed header: prefix, type, group, index and term. */
export const RECORD_HEADER_BYTES = 33;
/**
 * Largest record, prefix included: 16 MiB. Writing a larger one is a
 * programmer error (callers bound entry sizes well below it); reading a
 * length prefix above it is corruption.
 */
export const RECORD_BYTES_MAX = 16 * 1024 * 1024;

const TYPE_ENTRY = 1;
const TYPE_HARD_STATE = 2;
const TYPE_SNAPSHOT = 3;
const TYPE_COMPACTION = 4;

/** One record of the log, decoded. */
export type LogRecord =
  | { readonly type: 'entry'; readonly group: RangeId; readonly entry: Entry }
  | { readonly type: 'hard-state'; readonly group: RangeId; readonly hardState: HardState }
  | {
      readonly type: 'snapshot';
      readonly group: RangeId;
      readonly snapshot: SnapshotMeta;
      /**
       * Whether the entries after `snapshot.index` survive the marker. Decided
       * when the marker is written (they survive when the stored entry at the
       * marker's index has the marker's term), so that replay does not depend
       * on records that compaction may have deleted.
       */
      readonly keepFollowing: boolean;
    }
  | { readonly type: 'compaction'; readonly group: RangeId; readonly index: LogIndex };

/** Encodes a record with its length and checksum. Asserts it fits {@link RECORD_BYTES_MAX}. */
export function encodeRecord(record: LogRecord): Uint8Array {
  const w = new ByteWriter(RECORD_HEADER_BYTES + bodySizeHint(record));
  w.u32(0); // length, patched below
  w.u32(0); // checksum, patched below
  const [type, index, t] = headerFields(record);
  w.u8(type);
  w.u64(record.group);
  w.u64(index);
  w.u64(t);
  encodeBody(w, record);
  const out = w.finish();
  assert(
    out.length <= RECORD_BYTES_MAX,
    () => `log record of ${out.length} bytes exceeds RECORD_BYTES_MAX (${RECORD_BYTES_MAX})`,
  );
  w.patchU32(0, out.length - RECORD_PREFIX_BYTES);
  w.patchU32(4, crc32c(out, RECORD_PREFIX_BYTES));
  return out;
}

/** The outcome of checking a record's frame: its total length, or why it is not a valid record. */
export type FrameCheck =
  | { readonly ok: true; readonly lengthBytes: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks the frame of the record at `offset`: a complete prefix, a length
 * within limits, every byte present and a matching checksum. Does not look
 * at the body (see {@link decodeRecord}).
 */
export function checkFrame(bytes: Uint8Array, offset: number): FrameCheck {
  const left = bytes.length - offset;
  if (left < RECORD_PREFIX_BYTES) {
    return { ok: false, reason: `incomplete record prefix (${left} bytes)` };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, RECORD_PREFIX_BYTES);
  const length = view.getUint32(0, true);
  const total = RECORD_PREFIX_BYTES + length;
  if (total < RECORD_HEADER_BYTES) {
    return { ok: false, reason: `record length ${length} is shorter than the header` };
  }
  if (total > RECORD_BYTES_MAX) {
    return { ok: false, reason: `record length ${length} exceeds RECORD_BYTES_MAX` };
  }
  if (total > left) {
    return { ok: false, reason: `incomplete record (${total} bytes, ${left} present)` };
  }
  const crc = crc32c(bytes, offset + RECORD_PREFIX_BYTES, offset + total);
  if (crc !== view.getUint32(4, true)) return { ok: false, reason: 'checksum mismatch' };
  return { ok: true, lengthBytes: total };
}

/**
 * Decodes the record at `bytes[offset, offset + lengthBytes)`, whose frame
 * {@link checkFrame} accepted. Entry data is a view into `bytes` (copy it to
 * keep it). Throws {@link DecodeError} if the record is malformed.
 */
export function decodeRecord(bytes: Uint8Array, offset: number, lengthBytes: number): LogRecord {
  const r = new ByteReader(bytes, offset + RECORD_PREFIX_BYTES, offset + lengthBytes);
  const type = r.u8();
  const group = rangeId(r.u64());
  const index = logIndex(r.u64());
  const t = term(r.u64());
  const record = decodeBody(r, type, group, index, t);
  r.expectEnd();
  return record;
}

function headerFields(record: LogRecord): [type: number, index: number, term: number] {
  switch (record.type) {
    case 'entry':
      return [TYPE_ENTRY, record.entry.index, record.entry.term];
    case 'hard-state':
      return [TYPE_HARD_STATE, record.hardState.commit, record.hardState.term];
    case 'snapshot':
      return [TYPE_SNAPSHOT, record.snapshot.index, record.snapshot.term];
    case 'compaction':
      return [TYPE_COMPACTION, record.index, 0];
    default:
      return assertNever(record, 'log record');
  }
}

function bodySizeHint(record: LogRecord): number {
  return record.type === 'entry' ? 32 + record.entry.data.length : 64;
}

function encodeBody(w: ByteWriter, record: LogRecord): void {
  switch (record.type) {
    case 'entry':
      return encodeEntryBody(w, record.entry);
    case 'hard-state':
      return w.u64(record.hardState.vote);
    case 'snapshot':
      w.u8(record.keepFollowing ? 1 : 0);
      return encodeConfState(w, record.snapshot.conf);
    case 'compaction':
      return;
    default:
      return assertNever(record, 'log record');
  }
}

function decodeBody(
  r: ByteReader,
  type: number,
  group: RangeId,
  index: LogIndex,
  t: Term,
): LogRecord {
  switch (type) {
    case TYPE_ENTRY:
      return { type: 'entry', group, entry: decodeEntryBody(r, index, t) };
    case TYPE_HARD_STATE:
      return {
        type: 'hard-state',
        group,
        hardState: { term: t, vote: nodeId(r.u64()), commit: index },
      };
    case TYPE_SNAPSHOT: {
      const flags = r.u8();
      if (flags > 1) throw new DecodeError(`unknown snapshot marker flags ${flags}`);
      const conf = decodeConfState(r);
      return {
        type: 'snapshot',
        group,
        snapshot: { index, term: t, conf },
        keepFollowing: flags === 1,
      };
    }
    case TYPE_COMPACTION:
      if (t !== 0) throw new DecodeError(`compaction marker with term ${t}`);
      return { type: 'compaction', group, index };
    default:
      throw new DecodeError(`unknown record type ${type}`);
  }
}

function encodeEntryBody(w: ByteWriter, entry: Entry): void {
  w.u8(entry.type === 'normal' ? 0 : 1);
  w.u8(entry.confChange === undefined ? 0 : 1);
  w.u32(entry.data.length);
  w.bytes(entry.data);
  if (entry.confChange !== undefined) encodeConfChange(w, entry.confChange);
}

function decodeEntryBody(r: ByteReader, index: LogIndex, t: Term): Entry {
  const type = r.u8();
  if (type > 1) throw new DecodeError(`unknown entry type ${type}`);
  const flags = r.u8();
  if (flags > 1) throw new DecodeError(`unknown entry flags ${flags}`);
  const data = r.bytes(r.u32());
  const base = {
    term: t,
    index,
    type: type === 0 ? ('normal' as const) : ('conf-change' as const),
    data,
  };
  return flags === 1 ? { ...base, confChange: decodeConfChange(r) } : base;
}

const STEP_TYPES: readonly ConfChangeStep['type'][] = ['add-voter', 'add-learner', 'remove-node'];

function encodeConfChange(w: ByteWriter, cc: ConfChange): void {
  if (cc.kind === 'leave-joint') return w.u8(1);
  w.u8(0);
  w.u32(cc.steps.length);
  for (const step of cc.steps) {
    w.u8(STEP_TYPES.indexOf(step.type));
    w.u64(step.node);
  }
}

function decodeConfChange(r: ByteReader): ConfChange {
  const kind = r.u8();
  if (kind === 1) return { kind: 'leave-joint' };
  if (kind !== 0) throw new DecodeError(`unknown conf change kind ${kind}`);
  const count = r.u32();
  // Each step takes 9 bytes: a count beyond what is left is malformed, not a reason to allocate.
  if (count * 9 > r.remaining()) throw new DecodeError(`conf change step count ${count} too large`);
  const steps: ConfChangeStep[] = [];
  for (let i = 0; i < count; i++) {
    const type = STEP_TYPES[r.u8()];
    if (type === undefined) throw new DecodeError('unknown conf change step type');
    steps.push({ type, node: nodeId(r.u64()) });
  }
  return { kind: 'change', steps };
}

function encodeConfState(w: ByteWriter, conf: ConfState): void {
  encodeNodes(w, conf.voters);
  encodeNodes(w, conf.votersOutgoing);
  encodeNodes(w, conf.learners);
}

function decodeConfState(r: ByteReader): ConfState {
  const voters = decodeNodes(r);
  const votersOutgoing = decodeNodes(r);
  const learners = decodeNodes(r);
  return { voters, votersOutgoing, learners };
}

function encodeNodes(w: ByteWriter, nodes: readonly NodeId[]): void {
  w.u32(nodes.length);
  for (const n of nodes) w.u64(n);
}

function decodeNodes(r: ByteReader): NodeId[] {
  const count = r.u32();
  if (count * 8 > r.remaining()) throw new DecodeError(`node count ${count} too large`);
  const out: NodeId[] = [];
  for (let i = 0; i < count; i++) out.push(nodeId(r.u64()));
  return out;
}
