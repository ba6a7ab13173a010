/**
 * Canaries: deliberate bugs, each breaking one real rule of the protocol,
 * switched on by name only in simulation. The simulator's checkers must
 * catch every one of them; a checker that cannot fail is worth nothing.
 * Each is wired into the real code path it breaks (FoundationDB's BUGGIFY idea).
 */

export const CANARIES = {
  'commit-previous-term':
    'The leader commits an entry of an earlier term by counting replicas (breaks Raft §5.4.2, figure 8).',
  'vote-without-log-check':
    'A node grants its vote without the log up-to-date check (breaks Raft §5.4.1, leader completeness).',
  'ack-before-persist':
    'A node sends its messages (append acks, votes) before its Ready is durable, so a crash loses acknowledged entries.',
  'lease-read-without-check-quorum':
    'A leader serves lease reads without checking that a quorum recently acknowledged it.',
  'apply-before-commit':
    'A node applies entries as soon as they are appended, before they are committed.',
  'forget-vote-on-restart':
    'A node forgets whom it voted for when it restarts, so it can vote twice in one term.',
  'ack-before-fsync':
    'The log engine reports an append durable before its fsync, so a crash loses acknowledged entries.',
  'heartbeat-commit-beyond-match':
    "A leader's heartbeat tells a follower its full commit index, even past what the follower is known to match.",
  'quiesce-without-liveness':
    'Quiet followers are never woken when node liveness finds their leader down, so a dead leader of a quiet group is never replaced.',
  'row-update-ignores-condition':
    "The state machine applies a conditional row update without checking its condition, so a row's compare-and-set always swaps.",
} as const;

export type CanaryName = keyof typeof CANARIES;

export const CANARY_NAMES = Object.keys(CANARIES) as CanaryName[];

export function isCanaryName(name: string): name is CanaryName {
  return Object.hasOwn(CANARIES, name);
}
