// One sample of every Message variant, for codec and transport tests.
import { logIndex, nodeId, rangeId, term } from '../../src/core/ids.ts';
import type { Message } from '../../src/raft/types.ts';
import type { Envelope } from '../../src/transport/frame.ts';

const base = { from: nodeId(1), to: nodeId(2), term: term(7) };

/** Every message type once (heartbeats twice: with the optional quiesce flag), with binary entry data, conf changes and a snapshot. */
export const SAMPLE_MESSAGES: readonly Message[] = [
  {
    ...base,
    type: 'app',
    index: logIndex(10),
    logTerm: term(6),
    commit: logIndex(9),
    entries: [
      {
        term: term(7),
        index: logIndex(11),
        type: 'normal',
        data: new Uint8Array([0, 1, 255, 128]),
      },
      { term: term(7), index: logIndex(12), type: 'normal', data: new Uint8Array(0) },
      {
        term: term(7),
        index: logIndex(13),
        type: 'conf-change',
        data: new Uint8Array(0),
        confChange: {
          kind: 'change',
          steps: [
            { type: 'add-voter', node: nodeId(4) },
            { type: 'add-learner', node: nodeId(5) },
            { type: 'remove-node', node: nodeId(3) },
          ],
        },
      },
      {
        term: term(7),
        index: logIndex(14),
        type: 'conf-change',
        data: new Uint8Array(0),
        confChange: { kind: 'leave-joint' },
      },
    ],
  },
  {
    ...base,
    type: 'app-resp',
    index: logIndex(14),
    reject: true,
    rejectHint: logIndex(8),
    logTerm: term(5),
  },
  {
    ...base,
    type: 'vote',
    pre: true,
    lastIndex: logIndex(14),
    lastTerm: term(7),
    transfer: false,
  },
  { ...base, type: 'vote-resp', pre: false, reject: false },
  { ...base, type: 'heartbeat', commit: logIndex(9), context: 'read-1', sentTick: 42 },
  { ...base, type: 'heartbeat-resp', context: '', sentTick: 42 },
  {
    ...base,
    type: 'snap',
    snapshot: {
      meta: {
        index: logIndex(100),
        term: term(6),
        conf: {
          voters: [nodeId(1), nodeId(2)],
          votersOutgoing: [nodeId(3)],
          learners: [nodeId(9)],
        },
      },
      data: Uint8Array.from({ length: 3000 }, (_, i) => (i * 31) & 0xff),
    },
  },
  { ...base, type: 'timeout-now' },
  { ...base, type: 'read-index', context: 'ctx-ü-✓' },
  {
    ...base,
    type: 'read-index-resp',
    context: 'ctx',
    index: logIndex(99),
    reject: false,
  },
  // Optional fields: the quiesce flag of heartbeats and their answers.
  { ...base, type: 'heartbeat', commit: logIndex(9), context: '', sentTick: 43, quiesce: true },
  { ...base, type: 'heartbeat-resp', context: '', sentTick: 43, quiesce: true },
];

/** The samples wrapped in envelopes of distinct ranges. */
export const SAMPLE_ENVELOPES: readonly Envelope[] = SAMPLE_MESSAGES.map((msg, i) => ({
  range: rangeId(i + 1),
  msg,
}));
