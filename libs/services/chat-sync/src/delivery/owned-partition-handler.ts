import { nak, type HandlerOutcome } from '@fedgate/bus';

/** What the handler needs of a stage's partition ownership (`PartitionOwnership`). */
export interface PartitionLeases {
  /** The lease is fresh: act on the partition. */
  owns(partition: number): boolean;
  /** The partitions this replica still holds (fresh or not), until lost or handed over. */
  owned(): number[];
}

/** How often a handler holding a message looks again at a lease whose renewal is overdue. */
export const STALE_LEASE_RECHECK_MS = 250;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A partition consumer's handler under elastic ownership. While the partition is still held here but its lease
 * is stale (a renewal overdue: the store unreachable, or this process paused), the message is held until the
 * lease is fresh again or the partition is given up, instead of being naked at once. Why: a nak counts as a
 * delivery, and a store that stayed away for a minute (the chaos run after issue 19: the MongoDB client had to
 * be replaced) naked every room-log message ten times in ten seconds, so they went to dead letters and never
 * reached the application service. Held, a message waits no longer than the next ownership round that gets
 * through to the store (renewed: handled; lost: naked for the new owner, which meanwhile waits behind it).
 */
export function ownedPartitionHandler<T>(
  leases: PartitionLeases,
  partition: number,
  handle: (data: T) => Promise<HandlerOutcome | void>,
  recheckMs = STALE_LEASE_RECHECK_MS,
): (message: { data: T }) => Promise<HandlerOutcome | void> {
  return async (message) => {
    while (!leases.owns(partition) && leases.owned().includes(partition)) await sleep(recheckMs);
    return leases.owns(partition) ? handle(message.data) : nak(1_000);
  };
}
