// Which events of a room redactions already accepted there claim and that are not redacted yet: the only events
// whose acceptance can apply a claim (a claim applies to a target in its own room only, never to one redacted
// already). Without it every accepted event costs a read of its claims (issue 19: one `claimsOn` per inbound PDU,
// almost always empty).
//
// A room's set is read from the store on its first use in this process, then kept by this process's own claims.
// That is sound only where this process is the only one that adds claims to the store (the embedded gateway);
// elsewhere the state-resolver does not use it. The set may name more than is open (a claim applied since, a
// claim whose write failed): that costs a read, never a missed redaction.
import type { Store } from '@fedgate/store';
import { LRUCache } from 'lru-cache';

/** Rooms whose sets are kept (a set is usually empty: a room's claims on events not received yet). */
export const CLAIMED_TARGET_ROOMS = 2_000;

export class ClaimedTargets {
  private readonly rooms = new LRUCache<string, Set<string>>({ max: CLAIMED_TARGET_ROOMS });

  constructor(private readonly store: Store) {}

  /** Whether a claim made in `roomId` may name `eventId`. Under the room's lock. */
  async mayBeClaimed(roomId: string, eventId: string): Promise<boolean> {
    return (await this.of(roomId)).has(eventId);
  }

  /** Called before a claim is written (so a failure between the two costs a read, never a miss). Under the room's lock. */
  async claiming(roomId: string, targetEventId: string): Promise<void> {
    (await this.of(roomId)).add(targetEventId);
  }

  /** The target is redacted now: no claim can apply to it any more. */
  redacted(roomId: string, targetEventId: string): void {
    this.rooms.get(roomId)?.delete(targetEventId);
  }

  private async of(roomId: string): Promise<Set<string>> {
    let targets = this.rooms.get(roomId);
    if (!targets) {
      targets = new Set(await this.store.redactions.openClaimTargets(roomId));
      this.rooms.set(roomId, targets);
    }
    return targets;
  }
}
