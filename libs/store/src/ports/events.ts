// The room DAG: every PDU the gateway has seen, keyed by event ID, append-only. Only the outcome
// fields may change later (an outlier joining the timeline, a soft-failed event re-checked).
import type { Pdu } from '@fedgate/protocol';
import type { RoomWriteFence } from './pending-commits';

/** accepted: passed auth; soft_failed: passed auth at its prev events but not against current state; rejected: failed auth. */
export type EventStatus = 'accepted' | 'soft_failed' | 'rejected';

export interface EventRecord {
  eventId: string;
  roomId: string;
  type: string;
  /** Present for state events (may be the empty string). */
  stateKey?: string;
  depth: number;
  prevEventIds: string[];
  authEventIds: string[];
  /** The PDU as received or built (redacted form if its content hash did not match). */
  pdu: Pdu;
  status: EventStatus;
  /** Why the event was rejected or soft-failed, for operators and the audit trail. */
  reason?: string;
  /** True while the state before the event is unknown (fetched only as an auth or state event). */
  outlier: boolean;
  /** When this server stored it (ms). */
  receivedTs: number;
  /** The redaction applied to this event (see RedactionRepository); read-only here, `append` ignores it. */
  redactedBy?: string;
}

export interface EventOutcome {
  status: EventStatus;
  reason?: string;
  outlier: boolean;
}

export interface DepthRangeQuery {
  roomId: string;
  /** Inclusive bounds. */
  minDepth: number;
  maxDepth: number;
  limit: number;
  /** Leave out rejected events (backfill serves only events that passed auth). Default true. */
  excludeRejected?: boolean;
}

export interface EventRepository {
  /**
   * Stores the event unless its ID is already stored; storing the same ID again is no error and
   * changes nothing (the first outcome stays; use `setOutcome` to change it). Returns whether it was new.
   */
  append(event: EventRecord): Promise<{ inserted: boolean }>;
  /** `append` for several events, in one round trip where the database allows. Returns the IDs newly stored. */
  appendMany(events: EventRecord[]): Promise<{ inserted: string[] }>;
  get(eventId: string): Promise<EventRecord | undefined>;
  /** The stored events among `eventIds`, keyed by ID. */
  getMany(eventIds: string[]): Promise<Map<string, EventRecord>>;
  /** The IDs among `eventIds` that are not stored, in the given order. */
  missing(eventIds: string[]): Promise<string[]>;
  /** Events of a room with depth in [minDepth, maxDepth], deepest first: what backfill walks. */
  byDepthRange(query: DepthRangeQuery): Promise<EventRecord[]>;
  /** Events of a room with the given status, newest (deepest) first: e.g. rejected events with their reasons. */
  byStatus(roomId: string, status: EventStatus, limit: number): Promise<EventRecord[]>;
  /** Changes status/reason/outlier of a stored event; false if it is not stored. */
  setOutcome(eventId: string, outcome: EventOutcome, fence?: RoomWriteFence): Promise<boolean>;
}
