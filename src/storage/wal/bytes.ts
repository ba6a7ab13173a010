/**
 * Little-endian byte encoding for the log engine's records: a growable
 * writer and a bounds-checked reader. Integers are unsigned; a "u64" holds a
 * JavaScript safe integer (< 2^53), so ids, indexes and terms never need
 * `bigint`.
 */
import { assert } from '../../core/assert.ts';

const TWO_POW_32 = 0x1_0000_0000;
/** The high 32-bit word of a u64 that still fits a safe integer (2^53 - 1). */
const U64_HIGH_MAX = 0x1f_ffff;

/**
 * Thrown by {@link ByteReader} on malformed input. Callers that know where
 * the bytes came from turn it into a CORRUPTION error naming the location.
 */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

/** Appends little-endian integers and raw bytes to a buffer that grows as needed. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  /** @param capacityBytes initial capacity; a good guess saves copies. */
  constructor(capacityBytes = 64) {
    this.buf = new Uint8Array(Math.max(16, capacityBytes));
    this.view = new DataView(this.buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  u8(value: number): void {
    assert(
      Number.isInteger(value) && value >= 0 && value <= 0xff,
      () => `u8 out of range: ${value}`,
    );
    this.reserve(1);
    this.buf[this.pos++] = value;
  }

  u32(value: number): void {
    assert(
      Number.isInteger(value) && value >= 0 && value < TWO_POW_32,
      () => `u32 out of range: ${value}`,
    );
    this.reserve(4);
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
  }

  /** Writes a non-negative safe integer as 8 bytes (low word first). */
  u64(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, () => `u64 out of range: ${value}`);
    this.reserve(8);
    this.view.setUint32(this.pos, value % TWO_POW_32, true);
    this.view.setUint32(this.pos + 4, Math.floor(value / TWO_POW_32), true);
    this.pos += 8;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** Overwrites 4 bytes already written at `at`. */
  patchU32(at: number, value: number): void {
    assert(at >= 0 && at + 4 <= this.pos, () => `patchU32 outside the written bytes: ${at}`);
    this.view.setUint32(at, value, true);
  }

  /** The bytes written so far (a view of the internal buffer; stop writing after this). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

/** Reads little-endian integers from `bytes[start, end)`; throws {@link DecodeError} past the end. */
export class ByteReader {
  private readonly view: DataView;
  private pos: number;

  constructor(
    private readonly src: Uint8Array,
    start = 0,
    private readonly end = src.length,
  ) {
    assert(start >= 0 && start <= end && end <= src.length, 'ByteReader: bad bounds');
    this.view = new DataView(src.buffer, src.byteOffset, src.byteLength);
    this.pos = start;
  }

  /** Bytes left before the end. */
  remaining(): number {
    return this.end - this.pos;
  }

  u8(): number {
    this.need(1);
    return this.src[this.pos++]!;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const low = this.view.getUint32(this.pos, true);
    const high = this.view.getUint32(this.pos + 4, true);
    if (high > U64_HIGH_MAX) throw new DecodeError(`u64 at ${this.pos} exceeds 2^53`);
    this.pos += 8;
    return high * TWO_POW_32 + low;
  }

  /** The next `n` bytes as a view (no copy): copy before keeping it. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.src.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Throws unless every byte was consumed. */
  expectEnd(): void {
    if (this.pos !== this.end) {
      throw new DecodeError(`${this.end - this.pos} unexpected trailing bytes`);
    }
  }

  private need(n: number): void {
    if (this.pos + n > this.end) {
      throw new DecodeError(`needs ${n} bytes at ${this.pos}, only ${this.end - this.pos} left`);
    }
  }
}
