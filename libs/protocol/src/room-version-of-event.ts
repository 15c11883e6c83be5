// An event carries no record of its room's version. For a room we are not in (an invite kept as an outlier), the
// version is recovered from the event itself: the versions under whose rules it has the ID it was received with.
import { computeEventId } from './event-signing';
import { validatePdu } from './pdu-validation';
import { ROOM_VERSIONS } from './room-versions';

/**
 * Room versions (newest first) under whose rules `pdu` is a valid event with the ID `eventId`; empty when none.
 * Versions that share an event format and redaction rules for this event all qualify.
 */
export function roomVersionsForEventId(pdu: Record<string, unknown>, eventId: string): string[] {
  return [...ROOM_VERSIONS.keys()].reverse().filter((version) => {
    try {
      validatePdu(pdu, version);
      return computeEventId(pdu as never, version) === eventId;
    } catch {
      return false;
    }
  });
}
