import { fencedWrite } from './pending-commits';
import type { RoomWriteFence } from '../ports/pending-commits';
import type { EventStateRefs } from '../ports/state';
import type { SnapshotRow, SnapshotRowStore } from '../shared/snapshots';
import type { SqliteDatabase } from './database';

interface Row {
  id: string;
  room_id: string;
  base_id: string | null;
  ancestors: string;
  delta: string;
}

export class SqliteSnapshotRows implements SnapshotRowStore {
  constructor(private readonly db: SqliteDatabase) {}

  async putRow(row: SnapshotRow): Promise<void> {
    this.db.run(
      'INSERT INTO store_state_snapshots (id, room_id, base_id, ancestors, delta) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      row.id,
      row.roomId,
      row.baseId,
      JSON.stringify(row.ancestors),
      JSON.stringify(row.delta),
    );
  }

  async getRows(ids: string[]): Promise<SnapshotRow[]> {
    if (ids.length === 0) return [];
    const rows = this.db.all<Row>('SELECT * FROM store_state_snapshots WHERE id IN (SELECT value FROM json_each(?))', JSON.stringify(ids));
    return rows.map((r) => ({ id: r.id, roomId: r.room_id, baseId: r.base_id, ancestors: JSON.parse(r.ancestors), delta: JSON.parse(r.delta) }));
  }

  async putEventRefs(eventId: string, refs: EventStateRefs, fence?: RoomWriteFence): Promise<void> {
    fencedWrite(this.db, fence, `state refs of ${eventId}`, () => this.putEventRefsNow(eventId, refs));
  }

  putEventRefsNow(eventId: string, refs: EventStateRefs): void {
    this.db.run(
      'INSERT INTO store_event_state (event_id, before_id, after_id) VALUES (?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET before_id = excluded.before_id, after_id = excluded.after_id',
      eventId,
      refs.before,
      refs.after,
    );
  }

  async getEventRefs(eventId: string): Promise<EventStateRefs | undefined> {
    const r = this.db.get<{ before_id: string; after_id: string }>('SELECT before_id, after_id FROM store_event_state WHERE event_id = ?', eventId);
    return r && { before: r.before_id, after: r.after_id };
  }
}
