import { redactEvent, type Pdu } from '@fedgate/protocol';
import type { EventRecord } from '../ports/events';

/**
 * The PDU as the federation API serves it: the stored one, or its redacted form once a redaction was applied
 * (same hashes and signatures, so it still verifies). `roomVersion` is only read for redacted events.
 */
export function pduWithRedaction(record: EventRecord, roomVersion: string | undefined): Pdu {
  if (record.redactedBy === undefined || roomVersion === undefined) return record.pdu;
  return redactEvent(record.pdu, roomVersion) as Pdu;
}
