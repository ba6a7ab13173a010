/**
 * Attribute values in storage and in JSON.
 *
 * Storage: {@link encodeAttribute} writes one type byte and the body, so the
 * type survives exactly: a `bigint` reads back as an integer and a `number`
 * as a double even when it is integral (a generic format such as msgpack
 * would turn the double 1.0 into the integer 1).
 *
 * | type    | byte   | body                                   |
 * | ------- | ------ | -------------------------------------- |
 * | string  | `0x01` | UTF-8 bytes                            |
 * | integer | `0x02` | 8 bytes, big-endian two's complement   |
 * | double  | `0x03` | 8 bytes, big-endian IEEE 754 binary64  |
 * | boolean | `0x04` | 1 byte, 0 or 1                         |
 * | binary  | `0x05` | the bytes                              |
 *
 * JSON (wire and CLI) has one number type, so integers and doubles are told
 * apart by a convention (see {@link attributeFromJson}): a JSON integer is an
 * integer, a JSON fraction is a double, and the tagged objects `{"$int":
 * "123"}`, `{"$double": 1}` and `{"$binary": "<base64>"}` say the rest.
 * Primary-key values use the same forms against their column's type, plus
 * `{"$inf": "min" | "max"}` for scan bounds.
 */
import { assert } from '../core/assert.ts';
import { TesseraError } from '../core/errors.ts';
import { checkInt64 } from './int64.ts';
import {
  INF_MAX,
  INF_MIN,
  type AttributeType,
  type AttributeValue,
  type PkBound,
  type PkColumnType,
  type PkValue,
} from './types.ts';
import { utf8Decode, utf8Encode } from './utf8.ts';

/**
 * The most bytes of one attribute value's body (UTF-8 bytes of a string,
 * bytes of a binary), 2 MiB as Table Store. Exceeding it throws VALUE_TOO_LARGE.
 */
export const VALUE_BYTES_MAX = 2 * 1024 * 1024;

/** Type bytes of the storage encoding. */
const TYPE_BYTE: Readonly<Record<AttributeType, number>> = {
  string: 0x01,
  integer: 0x02,
  double: 0x03,
  boolean: 0x04,
  binary: 0x05,
};

const FIXED_BODY_BYTES = 8;

/** The largest integer a JSON number carries exactly: 2^53 - 1. */
const JSON_INTEGER_MAX = Number.MAX_SAFE_INTEGER;

/** Decimal digits and sign of the longest int64, -9223372036854775808. */
const INT_STRING_CHARS_MAX = 20;

const INT_STRING = /^-?(0|[1-9][0-9]*)$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The type of an attribute value: bigint is integer, number is double.
 * Anything else is a programmer error (the type system excludes it).
 */
export function attributeType(v: AttributeValue): AttributeType {
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'bigint':
      return 'integer';
    case 'number':
      return 'double';
    case 'boolean':
      return 'boolean';
    default:
      assert(v instanceof Uint8Array, () => `not an attribute value: ${typeof v}`);
      return 'binary';
  }
}

function invalid(message: string): never {
  throw new TesseraError('INVALID_ARGUMENT', message);
}

function checkBodyBytes(bytes: number, what: string): void {
  if (bytes > VALUE_BYTES_MAX) {
    throw new TesseraError(
      'VALUE_TOO_LARGE',
      `${what} is at least ${bytes} bytes; the limit is ${VALUE_BYTES_MAX}`,
      { limit: VALUE_BYTES_MAX, actual: bytes },
    );
  }
}

function withType(type: AttributeType, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + body.length);
  out[0] = TYPE_BYTE[type];
  out.set(body, 1);
  return out;
}

/** A double must be finite: NaN and the infinities have no JSON form. */
function checkDouble(v: number, what: string): number {
  if (!Number.isFinite(v)) invalid(`${what}: a double must be finite, got ${v}`);
  return v;
}

/**
 * Encodes an attribute value for storage, keeping its exact type; the
 * inverse is {@link decodeAttribute}.
 *
 * @throws TesseraError INVALID_ARGUMENT for an integer outside the signed
 *   64-bit range, a NaN or infinite double, or a string with a lone
 *   surrogate; VALUE_TOO_LARGE if a string or binary body exceeds
 *   {@link VALUE_BYTES_MAX}.
 */
export function encodeAttribute(v: AttributeValue): Uint8Array {
  const type = attributeType(v);
  const what = `attribute value (${type})`;
  switch (type) {
    case 'string': {
      const s = v as string;
      // UTF-8 never has fewer bytes than UTF-16 code units: reject before encoding.
      checkBodyBytes(s.length, what);
      const body = utf8Encode(s, what);
      checkBodyBytes(body.length, what);
      return withType(type, body);
    }
    case 'binary': {
      const b = v as Uint8Array;
      checkBodyBytes(b.length, what);
      return withType(type, b);
    }
    case 'integer': {
      const body = new Uint8Array(FIXED_BODY_BYTES);
      new DataView(body.buffer).setBigInt64(0, checkInt64(v as bigint, what));
      return withType(type, body);
    }
    case 'double': {
      const body = new Uint8Array(FIXED_BODY_BYTES);
      new DataView(body.buffer).setFloat64(0, checkDouble(v as number, what));
      return withType(type, body);
    }
    case 'boolean':
      return withType(type, Uint8Array.of(v === true ? 1 : 0));
  }
}

function malformed(what: string): never {
  invalid(`malformed attribute encoding: ${what}`);
}

/**
 * Decodes bytes written by {@link encodeAttribute}. The result owns its
 * memory (a binary value is a copy, not a view of `bytes`).
 *
 * @throws TesseraError INVALID_ARGUMENT if the bytes are not such an
 *   encoding (unknown type byte, wrong body length, invalid UTF-8, a
 *   non-finite double); VALUE_TOO_LARGE if the body exceeds {@link VALUE_BYTES_MAX}.
 */
export function decodeAttribute(bytes: Uint8Array): AttributeValue {
  if (bytes.length === 0) malformed('empty');
  const body = bytes.subarray(1);
  const fixed = (): DataView => {
    if (body.length !== FIXED_BODY_BYTES) malformed(`body of ${body.length} bytes, expected 8`);
    return new DataView(body.buffer, body.byteOffset, body.byteLength);
  };
  switch (bytes[0]) {
    case TYPE_BYTE.string:
      checkBodyBytes(body.length, 'stored string');
      return utf8Decode(body, 'stored string');
    case TYPE_BYTE.binary:
      checkBodyBytes(body.length, 'stored binary');
      return body.slice();
    case TYPE_BYTE.integer:
      return fixed().getBigInt64(0);
    case TYPE_BYTE.double:
      return checkDouble(fixed().getFloat64(0), 'stored double');
    case TYPE_BYTE.boolean:
      if (body.length !== 1 || body[0]! > 1) malformed('boolean body is not one byte 0 or 1');
      return body[0] === 1;
    default:
      return malformed(`unknown type byte 0x${bytes[0]!.toString(16)}`);
  }
}

// ---- JSON ----

/** The JSON form of an integer that a JSON number cannot carry exactly. */
export interface IntJson {
  readonly $int: string;
}
/** The JSON form of an integral double. */
export interface DoubleJson {
  readonly $double: number;
}
/** The JSON form of a binary value: standard base64 with padding. */
export interface BinaryJson {
  readonly $binary: string;
}
/** The JSON form of an infinite scan bound. */
export interface InfJson {
  readonly $inf: 'min' | 'max';
}

/** What {@link attributeToJson} emits and {@link attributeFromJson} takes. */
export type AttributeJson = string | number | boolean | IntJson | DoubleJson | BinaryJson;
/** What {@link pkValueToJson} emits and {@link pkValueFromJson} takes. */
export type PkValueJson = string | number | IntJson | BinaryJson;
/** What {@link pkBoundToJson} emits and {@link pkBoundFromJson} takes. */
export type PkBoundJson = PkValueJson | InfJson;

const TAGS = ['$int', '$double', '$binary', '$inf'] as const;
type Tag = (typeof TAGS)[number];

/** The tag and payload of a one-key tagged object, or undefined if `json` is not an object. */
function tagged(json: unknown, what: string): { tag: Tag; payload: unknown } | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const keys = Object.keys(json);
  const tag = TAGS.find((t) => t === keys[0]);
  if (keys.length !== 1 || tag === undefined) {
    invalid(
      `${what}: an object must have exactly one of the keys ${TAGS.join(', ')}, got {${keys.join(', ')}}`,
    );
  }
  return { tag, payload: (json as Record<string, unknown>)[tag] };
}

function describeJson(json: unknown): string {
  if (json === null) return 'null';
  if (Array.isArray(json)) return 'an array';
  return typeof json === 'object' ? 'an object' : `a ${typeof json}`;
}

/** An integer from a JSON number; refuses those a JSON number cannot carry exactly. */
function integerFromNumber(n: number, what: string): bigint {
  if (!Number.isSafeInteger(n)) {
    invalid(
      `${what}: the JSON number ${n} is beyond 2^53 and may have lost precision; ` +
        `write an integer as {"$int": "<decimal>"} (or a double as {"$double": ${n}})`,
    );
  }
  return BigInt(n);
}

function integerFromIntJson(payload: unknown, what: string): bigint {
  if (typeof payload === 'number' && Number.isInteger(payload)) {
    return integerFromNumber(payload, what);
  }
  if (typeof payload !== 'string' || !INT_STRING.test(payload)) {
    invalid(`${what}: {"$int": ...} takes a decimal integer string such as "-42"`);
  }
  if (payload.length > INT_STRING_CHARS_MAX) {
    invalid(`${what}: integer ${payload.slice(0, INT_STRING_CHARS_MAX)}... is outside 64 bits`);
  }
  return checkInt64(BigInt(payload), what);
}

function binaryFromJson(payload: unknown, what: string): Uint8Array {
  if (typeof payload !== 'string' || !BASE64.test(payload)) {
    invalid(`${what}: {"$binary": ...} takes a standard base64 string with padding`);
  }
  const padding = payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0;
  checkBodyBytes((payload.length / 4) * 3 - padding, what);
  // Copy out of the Buffer: values are plain Uint8Arrays.
  return new Uint8Array(Buffer.from(payload, 'base64'));
}

function binaryToJson(b: Uint8Array): BinaryJson {
  return { $binary: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') };
}

function integerToJson(v: bigint): number | IntJson {
  return v >= -JSON_INTEGER_MAX && v <= JSON_INTEGER_MAX ? Number(v) : { $int: v.toString() };
}

/**
 * An attribute value from its JSON form:
 *
 * - a JSON string is a string, `true`/`false` a boolean;
 * - a JSON number without a fraction is an integer, if it is within
 *   ±(2^53 - 1) (beyond, the JSON number may already have lost precision:
 *   the error says to use `{"$int": "..."}`); a number with a fraction is a
 *   double (note that `1.0` in JSON text parses as the integer 1);
 * - `{"$int": "123"}` is an integer (a decimal string, or a safe JSON integer);
 * - `{"$double": 1}` is a double (any finite JSON number);
 * - `{"$binary": "AAE="}` is binary (standard base64 with padding).
 *
 * @throws TesseraError INVALID_ARGUMENT for anything else (null, arrays,
 *   other objects, out-of-range integers, bad base64), naming `what`;
 *   VALUE_TOO_LARGE as {@link encodeAttribute}.
 */
export function attributeFromJson(json: unknown, what = 'attribute value'): AttributeValue {
  switch (typeof json) {
    case 'string':
      return json;
    case 'boolean':
      return json;
    case 'number':
      return Number.isInteger(json) ? integerFromNumber(json, what) : checkDouble(json, what);
  }
  const t = tagged(json, what);
  if (t === undefined)
    invalid(`${what}: expected a JSON attribute value, got ${describeJson(json)}`);
  switch (t.tag) {
    case '$int':
      return integerFromIntJson(t.payload, what);
    case '$double':
      if (typeof t.payload !== 'number') invalid(`${what}: {"$double": ...} takes a JSON number`);
      return checkDouble(t.payload, what);
    case '$binary':
      return binaryFromJson(t.payload, what);
    case '$inf':
      return invalid(`${what}: {"$inf": ...} is a scan bound, not an attribute value`);
  }
}

/**
 * The JSON form of an attribute value, the inverse of {@link attributeFromJson}:
 * integers as JSON numbers when within ±(2^53 - 1), else `{"$int": "..."}`;
 * doubles as JSON numbers when they have a fraction, else `{"$double": n}`;
 * binary as `{"$binary": base64}`. (-0 is emitted as `{"$double": -0}`,
 * which JSON text prints as 0.)
 */
export function attributeToJson(v: AttributeValue): AttributeJson {
  const type = attributeType(v);
  switch (type) {
    case 'string':
    case 'boolean':
      return v as string | boolean;
    case 'integer':
      return integerToJson(v as bigint);
    case 'double':
      return Number.isInteger(v) ? { $double: v as number } : (v as number);
    case 'binary':
      return binaryToJson(v as Uint8Array);
  }
}

/**
 * A primary-key value of a column of type `type` from its JSON form: a JSON
 * string for a string column; a JSON integer within ±(2^53 - 1) or
 * `{"$int": "..."}` for an integer column; `{"$binary": base64}` for a
 * binary column. Sizes are checked by the key codec, not here.
 *
 * @throws TesseraError INVALID_ARGUMENT if the form does not fit the
 *   column's type, naming `what`.
 */
export function pkValueFromJson(
  type: PkColumnType,
  json: unknown,
  what = 'primary key value',
): PkValue {
  const where = `${what} (${type})`;
  const t = typeof json === 'object' ? tagged(json, where) : undefined;
  switch (type) {
    case 'string':
      if (typeof json !== 'string')
        invalid(`${where}: expected a JSON string, got ${describeJson(json)}`);
      return json;
    case 'integer':
      if (typeof json === 'number' && Number.isInteger(json)) return integerFromNumber(json, where);
      if (t?.tag !== '$int') {
        invalid(`${where}: expected a JSON integer or {"$int": "..."}, got ${describeJson(json)}`);
      }
      return integerFromIntJson(t.payload, where);
    case 'binary':
      if (t?.tag !== '$binary') {
        invalid(`${where}: expected {"$binary": "<base64>"}, got ${describeJson(json)}`);
      }
      return binaryFromJson(t.payload, where);
  }
}

/** The JSON form of a primary-key value, the inverse of {@link pkValueFromJson}. */
export function pkValueToJson(v: PkValue): PkValueJson {
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return integerToJson(v);
  return binaryToJson(v);
}

/**
 * A scan bound's column from its JSON form: `{"$inf": "min"}` is INF_MIN,
 * `{"$inf": "max"}` is INF_MAX, anything else as {@link pkValueFromJson}.
 */
export function pkBoundFromJson(type: PkColumnType, json: unknown, what = 'bound value'): PkBound {
  const t = typeof json === 'object' ? tagged(json, `${what} (${type})`) : undefined;
  if (t?.tag !== '$inf') return pkValueFromJson(type, json, what);
  if (t.payload === 'min') return INF_MIN;
  if (t.payload === 'max') return INF_MAX;
  return invalid(`${what} (${type}): {"$inf": ...} takes "min" or "max"`);
}

/** The JSON form of a scan bound's column, the inverse of {@link pkBoundFromJson}. */
export function pkBoundToJson(b: PkBound): PkBoundJson {
  if (b === INF_MIN) return { $inf: 'min' };
  if (b === INF_MAX) return { $inf: 'max' };
  return pkValueToJson(b);
}
