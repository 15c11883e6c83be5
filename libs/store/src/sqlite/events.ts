import { fencedWrite } from './pending-commits';
import type { RoomWriteFence } from '../ports/pending-commits';
import type { Pdu } from '@fedgate/protocol';
import type { DepthRangeQuery, EventOutcome, EventRecord, EventRepository, EventStatus } from '../ports/events';
import { orNull, type SqliteDatabase } from './database';

interface EventRow {
  event_id: string;
  room_id: string;
  type: string;
  state_key: string | null;
  depth: number;
  prev_ids: string;
  auth_ids: string;
  pdu: string;
  status: EventStatus;
  reason: string | null;
  outlier: number;
  received_ts: number;
  redacted_by: string | null;
}

// Every read carries the applied redaction, if any, with the event.
const SELECT = 'SELECT e.*, r.redaction_id AS redacted_by FROM store_events e LEFT JOIN store_redacted_events r ON r.event_id = e.event_id';

const INSERT = `INSERT INTO store_events (event_id, room_id, type, state_key, depth, prev_ids, auth_ids, pdu, status, reason, outlier, received_ts)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`;

export class SqliteEventRepository implements EventRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async append(event: EventRecord): Promise<{ inserted: boolean }> {
    return { inserted: this.insert(event) };
  }

  async appendMany(events: EventRecord[]): Promise<{ inserted: string[] }> {
    return { inserted: this.db.transaction(() => events.filter((e) => this.insert(e)).map((e) => e.eventId)) };
  }

  async get(eventId: string): Promise<EventRecord | undefined> {
    const row = this.db.get<EventRow>(`${SELECT} WHERE e.event_id = ?`, eventId);
    return row && toRecord(row);
  }

  async getMany(eventIds: string[]): Promise<Map<string, EventRecord>> {
    const rows = this.db.all<EventRow>(`${SELECT} WHERE e.event_id IN (SELECT value FROM json_each(?))`, JSON.stringify(eventIds));
    return new Map(rows.map((r) => [r.event_id, toRecord(r)]));
  }

  async missing(eventIds: string[]): Promise<string[]> {
    const found = this.db.all<{ event_id: string }>(
      'SELECT event_id FROM store_events WHERE event_id IN (SELECT value FROM json_each(?))',
      JSON.stringify(eventIds),
    );
    const have = new Set(found.map((r) => r.event_id));
    return eventIds.filter((id) => !have.has(id));
  }

  async byDepthRange(q: DepthRangeQuery): Promise<EventRecord[]> {
    const rejected = q.excludeRejected === false ? '' : " AND e.status != 'rejected'";
    const rows = this.db.all<EventRow>(
      `${SELECT} WHERE e.room_id = ? AND e.depth BETWEEN ? AND ?${rejected} ORDER BY e.depth DESC, e.event_id LIMIT ?`,
      q.roomId,
      q.minDepth,
      q.maxDepth,
      q.limit,
    );
    return rows.map(toRecord);
  }

  async byStatus(roomId: string, status: EventStatus, limit: number): Promise<EventRecord[]> {
    const rows = this.db.all<EventRow>(
      `${SELECT} WHERE e.room_id = ? AND e.status = ? ORDER BY e.depth DESC, e.event_id LIMIT ?`,
      roomId,
      status,
      limit,
    );
    return rows.map(toRecord);
  }

  async setOutcome(eventId: string, outcome: EventOutcome, fence?: RoomWriteFence): Promise<boolean> {
    return fencedWrite(this.db, fence, `outcome of ${eventId}`, () => this.setOutcomeNow(eventId, outcome));
  }

  setOutcomeNow(eventId: string, outcome: EventOutcome): boolean {
    const r = this.db.run(
      'UPDATE store_events SET status = ?, reason = ?, outlier = ? WHERE event_id = ?',
      outcome.status,
      orNull(outcome.reason),
      outcome.outlier ? 1 : 0,
      eventId,
    );
    return r.changes > 0;
  }

  insert(e: EventRecord): boolean {
    const r = this.db.run(
      INSERT,
      e.eventId,
      e.roomId,
      e.type,
      orNull(e.stateKey),
      e.depth,
      JSON.stringify(e.prevEventIds),
      JSON.stringify(e.authEventIds),
      JSON.stringify(e.pdu),
      e.status,
      orNull(e.reason),
      e.outlier ? 1 : 0,
      e.receivedTs,
    );
    return r.changes > 0;
  }
}

function toRecord(r: EventRow): EventRecord {
  const record: EventRecord = {
    eventId: r.event_id,
    roomId: r.room_id,
    type: r.type,
    depth: r.depth,
    prevEventIds: JSON.parse(r.prev_ids) as string[],
    authEventIds: JSON.parse(r.auth_ids) as string[],
    pdu: JSON.parse(r.pdu) as Pdu,
    status: r.status,
    outlier: r.outlier === 1,
    receivedTs: r.received_ts,
  };
  if (r.state_key !== null) record.stateKey = r.state_key;
  if (r.reason !== null) record.reason = r.reason;
  if (r.redacted_by !== null) record.redactedBy = r.redacted_by;
  return record;
}
