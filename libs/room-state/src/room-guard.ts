// State resolution works on one room: an event of another room reaching it (as a state set entry or through an
// auth chain) is refused outright, so a peer naming another room's events can never make them this room's state.
import { roomOfEvent } from './authorize';
import type { EventLookup, StateMap } from './event';

export class ForeignEventError extends Error {
  constructor(
    readonly eventId: string,
    readonly eventRoomId: string | undefined,
    readonly roomId: string,
  ) {
    super(`event ${eventId} is in room ${String(eventRoomId)}, not ${roomId}: refused by state resolution`);
    this.name = 'ForeignEventError';
  }
}

/** The room the state sets are of: `roomId` when given, else the room of the first known event in them. */
export function roomOfStateSets(stateSets: readonly StateMap[], lookup: EventLookup, roomId?: string): string | undefined {
  if (roomId !== undefined) return roomId;
  for (const set of stateSets) {
    for (const id of set.values()) {
      const e = lookup(id);
      if (e) return roomOfEvent(e);
    }
  }
  return undefined;
}

/** A lookup that throws ForeignEventError for any known event outside `roomId`. */
export function roomScopedLookup(lookup: EventLookup, roomId: string): EventLookup {
  return (id) => {
    const e = lookup(id);
    if (e && roomOfEvent(e) !== roomId) throw new ForeignEventError(id, roomOfEvent(e), roomId);
    return e;
  };
}

/** Throws ForeignEventError when a known event of a state set is outside `roomId`. */
export function assertStateSetsInRoom(stateSets: readonly StateMap[], lookup: EventLookup, roomId: string): void {
  const scoped = roomScopedLookup(lookup, roomId);
  for (const set of stateSets) for (const id of set.values()) scoped(id);
}
