/**
 * Small helpers for command-line options parsed with `node:util` parseArgs.
 */

/**
 * An integer option: `dflt` when absent; otherwise a whole number >= `min`,
 * or `usage` is called with a message (it prints and exits).
 */
export function intOption(
  value: string | undefined,
  name: string,
  dflt: number,
  min: number,
  usage: (message: string) => never,
): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) usage(`--${name} must be an integer >= ${min}`);
  return n;
}
