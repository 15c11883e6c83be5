// An event carries no record of its room's version. For a room we are not in (an invite kept as an outlier), the
// version is recovered from the event itself: the versions under whose rules it has the ID it was received with.
import { computeEventId } from './event-signing';
import { ROOM_VERSIONS } from './room-versions';

/** Room versions (newest first) under whose rules `pdu` has the ID `eventId`; empty when none does. */
export function roomVersionsForEventId(pdu: Record<string, unknown>, eventId: string): string[] {
  return [...ROOM_VERSIONS.keys()].reverse().filter((version) => {
    try {
      return computeEventId(pdu as never, version) === eventId;
    } catch {
      return false;
    }
  });
}
