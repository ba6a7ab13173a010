/**
 * Branded identifier and counter types. A bare `number` never crosses a module
 * boundary where one of these is meant: the brand makes mixing a term with a
 * log index a compile error.
 */

/** Identifies a node (a Raft peer). Positive integer; 0 means "none". */
export type NodeId = number & { readonly __brand: 'NodeId' };
/** A Raft term. Starts at 0, only ever increases on a node (Raft §5.1). */
export type Term = number & { readonly __brand: 'Term' };
/** A position in a Raft log. Index 0 is the empty prefix; entries start at 1. */
export type LogIndex = number & { readonly __brand: 'LogIndex' };
/** Identifies a range (one Raft group). */
export type RangeId = number & { readonly __brand: 'RangeId' };

/** The absent node: no leader known, no vote cast. */
export const NO_NODE = 0 as NodeId;

export const nodeId = (n: number): NodeId => n as NodeId;
export const term = (n: number): Term => n as Term;
export const logIndex = (n: number): LogIndex => n as LogIndex;
export const rangeId = (n: number): RangeId => n as RangeId;
