/**
 * The `--initial-splits` list of `tessera start` and `tessera dev`: split
 * keys, comma-separated. Pure, so that tests can call it.
 *
 * - `KEY`: a split at key-value key KEY;
 * - `table:NAME`: where table NAME's span starts (the tables named from NAME
 *   on go to the next range);
 * - `table:NAME:TYPE:VALUE`: inside table NAME, at partition key VALUE of
 *   type string, integer or binary (base64); the rows whose partition key is
 *   VALUE or above go to the next range. The table must then be created with
 *   a partition key of that type.
 */
import { TesseraError } from '../core/errors.ts';
import { partitionSplitKey, tableRoutingKey } from '../table/routing.ts';
import { NAME_PATTERN } from '../table/schema.ts';
import type { PkValue } from '../table/types.ts';

function invalid(message: string): never {
  throw new TesseraError('INVALID_ARGUMENT', `--initial-splits: ${message}`);
}

/** The split key of one entry of the list. */
export function splitKeyOf(spec: string): string {
  if (!spec.startsWith('table:')) return spec;
  const [name = '', type, ...rest] = spec.slice('table:'.length).split(':');
  if (!NAME_PATTERN.test(name)) invalid(`"${spec}": "${name}" is not a table name`);
  if (type === undefined) return tableRoutingKey(name);
  const text = rest.join(':');
  let value: PkValue;
  switch (type) {
    case 'string':
      value = text;
      break;
    case 'integer':
      if (!/^-?\d+$/.test(text)) invalid(`"${spec}": "${text}" is not an integer`);
      value = BigInt(text);
      break;
    case 'binary':
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) invalid(`"${spec}": "${text}" is not base64`);
      value = new Uint8Array(Buffer.from(text, 'base64'));
      break;
    default:
      invalid(`"${spec}": type must be string, integer or binary, got "${type}"`);
  }
  try {
    return partitionSplitKey(name, type, value);
  } catch (e) {
    if (e instanceof TesseraError) invalid(`"${spec}": ${e.message}`);
    throw e;
  }
}

/** `a,b,c` -> split keys in key order; an empty text is no splits. */
export function splitList(text: string): string[] {
  if (text === '') return [];
  return text
    .split(',')
    .map(splitKeyOf)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
