import type { PendingCommit, PendingCommitRepository } from '../ports/pending-commits';
import type { SqliteDatabase } from './database';

interface Row {
  event_id: string;
  room_id: string;
  payload: string;
  created_ts: number;
}

const toCommit = (r: Row): PendingCommit => ({ eventId: r.event_id, roomId: r.room_id, payload: JSON.parse(r.payload) as Record<string, unknown>, createdTs: r.created_ts });

export class SqlitePendingCommitRepository implements PendingCommitRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async add(commit: PendingCommit): Promise<void> {
    this.db.run(
      'INSERT INTO store_pending_commits (event_id, room_id, payload, created_ts) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      commit.eventId,
      commit.roomId,
      JSON.stringify(commit.payload),
      commit.createdTs,
    );
  }

  async get(eventId: string): Promise<PendingCommit | undefined> {
    const r = this.db.get<Row>('SELECT event_id, room_id, payload, created_ts FROM store_pending_commits WHERE event_id = ?', eventId);
    return r && toCommit(r);
  }

  async list(roomId?: string): Promise<PendingCommit[]> {
    const rows =
      roomId === undefined
        ? this.db.all<Row>('SELECT event_id, room_id, payload, created_ts FROM store_pending_commits ORDER BY seq')
        : this.db.all<Row>('SELECT event_id, room_id, payload, created_ts FROM store_pending_commits WHERE room_id = ? ORDER BY seq', roomId);
    return rows.map(toCommit);
  }

  async remove(eventId: string): Promise<void> {
    this.db.run('DELETE FROM store_pending_commits WHERE event_id = ?', eventId);
  }
}
