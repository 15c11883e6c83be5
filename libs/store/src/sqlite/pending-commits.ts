import { CommitFencedError, RoomWriteFencedError, type CommitFence, type PendingCommit, type PendingCommitRepository, type RoomWriteFence } from '../ports/pending-commits';
import type { SqliteDatabase } from './database';

interface Row {
  event_id: string;
  room_id: string;
  payload: string;
  created_ts: number;
  /** The event row's PDU, for a record written without its own copy (`pdu_from = 'event'`). */
  event_pdu: string | null;
}

const toCommit = (r: Row): PendingCommit => {
  const payload = JSON.parse(r.payload) as Record<string, unknown>;
  if (r.event_pdu !== null) payload.pdu = JSON.parse(r.event_pdu) as unknown;
  return { eventId: r.event_id, roomId: r.room_id, payload, createdTs: r.created_ts };
};

const SELECT = `SELECT p.event_id, p.room_id, p.payload, p.created_ts, e.pdu AS event_pdu FROM store_pending_commits p
  LEFT JOIN store_events e ON p.pdu_from = 'event' AND e.event_id = p.event_id`;

const RAISE_ROOM_FENCE =
  'INSERT INTO store_commit_fences (room_id, partition, epoch) VALUES (?, ?, ?) ON CONFLICT (room_id) DO UPDATE SET partition = excluded.partition, epoch = excluded.epoch';

/**
 * A write of room data under a fence (`RoomWriteFence`): the room's fence checked and brought up to the write's
 * epoch, and the write made, in one transaction: refused with nothing written when the room has seen a higher epoch.
 */
export function fencedWrite<T>(db: SqliteDatabase, fence: RoomWriteFence | undefined, write: string, run: () => T): T {
  if (!fence) return run();
  return db.transaction(() => {
    const room = db.get<{ epoch: number }>('SELECT epoch FROM store_commit_fences WHERE room_id = ?', fence.roomId);
    if (room && room.epoch > fence.epoch) throw new RoomWriteFencedError(fence.roomId, write, fence.epoch, room.epoch);
    db.run(RAISE_ROOM_FENCE, fence.roomId, fence.partition, fence.epoch);
    return run();
  });
}

export class SqlitePendingCommitRepository implements PendingCommitRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec('CREATE TABLE IF NOT EXISTS store_commit_fences (room_id TEXT PRIMARY KEY, partition INTEGER NOT NULL, epoch INTEGER NOT NULL) WITHOUT ROWID');
    db.db.exec('CREATE INDEX IF NOT EXISTS store_commit_fences_partition ON store_commit_fences (partition)');
  }

  async add(commit: PendingCommit, fence?: CommitFence): Promise<void> {
    this.addNow(commit, fence);
  }

  /**
   * `pduInEvent`: the payload's `pdu` is the event row written in this same transaction; the record refers to it
   * instead of keeping a second copy (issue 19: one serialisation and ~1 KB written less per PDU).
   */
  addNow(commit: PendingCommit, fence?: CommitFence, pduInEvent = false): void {
    this.db.transaction(() => {
      if (fence) {
        const recorded = this.db.get<{ n: number }>('SELECT 1 AS n FROM store_pending_commits WHERE event_id = ?', commit.eventId);
        const room = this.db.get<{ epoch: number }>('SELECT epoch FROM store_commit_fences WHERE room_id = ?', commit.roomId);
        if (recorded) return;
        if (room && room.epoch > fence.epoch) throw new CommitFencedError(commit.roomId, commit.eventId, fence.epoch, room.epoch);
        this.db.run(RAISE_ROOM_FENCE, commit.roomId, fence.partition, fence.epoch);
      }
      this.insert(commit, pduInEvent);
    });
  }

  async raiseFence(fence: CommitFence): Promise<void> {
    this.db.run('UPDATE store_commit_fences SET epoch = ? WHERE partition = ? AND epoch < ?', fence.epoch, fence.partition, fence.epoch);
  }

  private insert(commit: PendingCommit, pduInEvent: boolean): void {
    let payload = commit.payload;
    if (pduInEvent) {
      const { pdu: _inEventRow, ...rest } = payload;
      payload = rest;
    }
    this.db.run(
      'INSERT INTO store_pending_commits (event_id, room_id, payload, created_ts, pdu_from) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      commit.eventId,
      commit.roomId,
      JSON.stringify(payload),
      commit.createdTs,
      pduInEvent ? 'event' : null,
    );
  }

  async get(eventId: string): Promise<PendingCommit | undefined> {
    const r = this.db.get<Row>(`${SELECT} WHERE p.event_id = ?`, eventId);
    return r && toCommit(r);
  }

  async list(roomId?: string): Promise<PendingCommit[]> {
    const rows =
      roomId === undefined
        ? this.db.all<Row>(`${SELECT} ORDER BY p.seq`)
        : this.db.all<Row>(`${SELECT} WHERE p.room_id = ? ORDER BY p.seq`, roomId);
    return rows.map(toCommit);
  }

  async remove(eventId: string, roomId?: string): Promise<void> {
    if (roomId === undefined) this.db.run('DELETE FROM store_pending_commits WHERE event_id = ?', eventId);
    else this.db.run('DELETE FROM store_pending_commits WHERE event_id = ? AND room_id = ?', eventId, roomId);
  }

  async removeAll(roomId: string, eventIds: readonly string[]): Promise<void> {
    this.db.transaction(() => {
      for (const eventId of eventIds) this.db.run('DELETE FROM store_pending_commits WHERE event_id = ? AND room_id = ?', eventId, roomId);
    });
  }
}
