import type { JsonObject } from '@fedgate/protocol';
import type { ChatLifecycleRepository, DeactivatedUserRecord, ForgottenRoomRecord, RoomDeletionRecord } from '../ports/chat-lifecycle';
import type { SqliteDatabase } from './database';

/** Created by the repository, like chat-sync's other tables, so the shared schema stays as it is. */
const CHAT_LIFECYCLE_SCHEMA = `
CREATE TABLE IF NOT EXISTS store_deactivated_users (
  user_id TEXT PRIMARY KEY, deactivated_ts INTEGER NOT NULL, erased INTEGER NOT NULL, app_service_id TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_room_deletions (
  room_id TEXT PRIMARY KEY, delete_id TEXT NOT NULL UNIQUE, deleted_ts INTEGER NOT NULL, app_service_id TEXT,
  blocked INTEGER NOT NULL, purged INTEGER NOT NULL, result TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_forgotten_rooms (
  user_id TEXT NOT NULL, room_id TEXT NOT NULL, membership_event_id TEXT NOT NULL, forgotten_ts INTEGER NOT NULL, PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
`;

interface DeactivatedRow {
  user_id: string;
  deactivated_ts: number;
  erased: number;
  app_service_id: string | null;
}

interface DeletionRow {
  room_id: string;
  delete_id: string;
  deleted_ts: number;
  app_service_id: string | null;
  blocked: number;
  purged: number;
  result: string;
}

const deletionOf = (r: DeletionRow): RoomDeletionRecord => ({
  roomId: r.room_id,
  deleteId: r.delete_id,
  deletedTs: r.deleted_ts,
  appServiceId: r.app_service_id,
  blocked: r.blocked === 1,
  purged: r.purged === 1,
  result: JSON.parse(r.result) as JsonObject,
});

export class SqliteChatLifecycleRepository implements ChatLifecycleRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec(CHAT_LIFECYCLE_SCHEMA);
  }

  async deactivate(record: DeactivatedUserRecord): Promise<{ created: boolean; record: DeactivatedUserRecord }> {
    const { changes } = this.db.run(
      'INSERT INTO store_deactivated_users (user_id, deactivated_ts, erased, app_service_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      record.userId,
      record.deactivatedTs,
      record.erased ? 1 : 0,
      record.appServiceId,
    );
    if (changes === 0 && record.erased) this.db.run('UPDATE store_deactivated_users SET erased = 1 WHERE user_id = ?', record.userId);
    return { created: changes > 0, record: (await this.getDeactivated(record.userId)) as DeactivatedUserRecord };
  }

  async getDeactivated(userId: string): Promise<DeactivatedUserRecord | undefined> {
    const r = this.db.get<DeactivatedRow>('SELECT * FROM store_deactivated_users WHERE user_id = ?', userId);
    return r && { userId: r.user_id, deactivatedTs: r.deactivated_ts, erased: r.erased === 1, appServiceId: r.app_service_id };
  }

  async recordRoomDeletion(record: RoomDeletionRecord): Promise<void> {
    this.db.run(
      `INSERT INTO store_room_deletions (room_id, delete_id, deleted_ts, app_service_id, blocked, purged, result) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (room_id) DO UPDATE SET delete_id = excluded.delete_id, deleted_ts = excluded.deleted_ts, app_service_id = excluded.app_service_id,
         blocked = excluded.blocked, purged = excluded.purged, result = excluded.result`,
      record.roomId,
      record.deleteId,
      record.deletedTs,
      record.appServiceId,
      record.blocked ? 1 : 0,
      record.purged ? 1 : 0,
      JSON.stringify(record.result),
    );
  }

  async getRoomDeletion(roomId: string): Promise<RoomDeletionRecord | undefined> {
    const r = this.db.get<DeletionRow>('SELECT * FROM store_room_deletions WHERE room_id = ?', roomId);
    return r && deletionOf(r);
  }

  async getRoomDeletionById(deleteId: string): Promise<RoomDeletionRecord | undefined> {
    const r = this.db.get<DeletionRow>('SELECT * FROM store_room_deletions WHERE delete_id = ?', deleteId);
    return r && deletionOf(r);
  }

  async forget(record: ForgottenRoomRecord): Promise<void> {
    this.db.run(
      `INSERT INTO store_forgotten_rooms (user_id, room_id, membership_event_id, forgotten_ts) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id, room_id) DO UPDATE SET membership_event_id = excluded.membership_event_id, forgotten_ts = excluded.forgotten_ts`,
      record.userId,
      record.roomId,
      record.membershipEventId,
      record.forgottenTs,
    );
  }

  async getForgotten(userId: string, roomId: string): Promise<ForgottenRoomRecord | undefined> {
    const r = this.db.get<{ membership_event_id: string; forgotten_ts: number }>(
      'SELECT membership_event_id, forgotten_ts FROM store_forgotten_rooms WHERE user_id = ? AND room_id = ?',
      userId,
      roomId,
    );
    return r && { userId, roomId, membershipEventId: r.membership_event_id, forgottenTs: r.forgotten_ts };
  }
}
