import type { DirectoryVisibility, RoomDirectoryEntry, RoomDirectoryRepository } from '../ports/room-directory';
import type { SqliteDatabase } from './database';

const ROOM_DIRECTORY_SCHEMA = `
CREATE TABLE IF NOT EXISTS store_room_directory (
  room_id TEXT PRIMARY KEY, visibility TEXT NOT NULL, app_service_id TEXT, updated_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_room_directory_visibility ON store_room_directory (visibility, room_id);
`;

interface DirectoryRow {
  room_id: string;
  visibility: DirectoryVisibility;
  app_service_id: string | null;
  updated_ts: number;
}

export class SqliteRoomDirectoryRepository implements RoomDirectoryRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec(ROOM_DIRECTORY_SCHEMA);
  }

  async set(entry: RoomDirectoryEntry): Promise<void> {
    this.db.run(
      `INSERT INTO store_room_directory (room_id, visibility, app_service_id, updated_ts) VALUES (?, ?, ?, ?)
       ON CONFLICT (room_id) DO UPDATE SET visibility = excluded.visibility, app_service_id = excluded.app_service_id, updated_ts = excluded.updated_ts`,
      entry.roomId,
      entry.visibility,
      entry.appServiceId,
      entry.updatedTs,
    );
  }

  async get(roomId: string): Promise<RoomDirectoryEntry | undefined> {
    const r = this.db.get<DirectoryRow>('SELECT * FROM store_room_directory WHERE room_id = ?', roomId);
    return r && { roomId: r.room_id, visibility: r.visibility, appServiceId: r.app_service_id, updatedTs: r.updated_ts };
  }

  async listPublic(options: { after?: string; limit: number }): Promise<string[]> {
    return this.db
      .all<{ room_id: string }>("SELECT room_id FROM store_room_directory WHERE visibility = 'public' AND room_id > ? ORDER BY room_id LIMIT ?", options.after ?? '', options.limit)
      .map((r) => r.room_id);
  }

  async countPublic(): Promise<number> {
    return this.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM store_room_directory WHERE visibility = 'public'")?.n ?? 0;
  }
}
