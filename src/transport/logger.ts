/**
 * The logging interface the transport writes to: a pino-compatible subset,
 * injected so that the transport depends on no logging library.
 */

/** Structured logger: `obj` holds the fields, `msg` a fixed message. */
export interface TransportLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** A logger that discards everything. */
export const SILENT_LOGGER: TransportLogger = {
  warn: () => {},
  info: () => {},
};
