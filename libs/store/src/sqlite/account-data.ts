import type { JsonObject } from '@fedgate/protocol';
import type { AccountDataEntry, AccountDataRepository } from '../ports/account-data';
import type { SqliteDatabase } from './database';

/** `room_id` is '' for global entries (a primary key column may not be NULL in a WITHOUT ROWID table). */
const ACCOUNT_DATA_SCHEMA = `
CREATE TABLE IF NOT EXISTS store_account_data (
  user_id TEXT NOT NULL, room_id TEXT NOT NULL, type TEXT NOT NULL, content TEXT NOT NULL, updated_ts INTEGER NOT NULL,
  PRIMARY KEY (user_id, room_id, type)
) WITHOUT ROWID;
`;

interface AccountDataRow {
  user_id: string;
  room_id: string;
  type: string;
  content: string;
  updated_ts: number;
}

const entryOf = (r: AccountDataRow): AccountDataEntry => ({
  userId: r.user_id,
  roomId: r.room_id === '' ? null : r.room_id,
  type: r.type,
  content: JSON.parse(r.content) as JsonObject,
  updatedTs: r.updated_ts,
});

export class SqliteAccountDataRepository implements AccountDataRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec(ACCOUNT_DATA_SCHEMA);
  }

  async put(entry: AccountDataEntry): Promise<void> {
    this.db.run(
      `INSERT INTO store_account_data (user_id, room_id, type, content, updated_ts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, updated_ts = excluded.updated_ts`,
      entry.userId,
      entry.roomId ?? '',
      entry.type,
      JSON.stringify(entry.content),
      entry.updatedTs,
    );
  }

  async get(userId: string, roomId: string | null, type: string): Promise<AccountDataEntry | undefined> {
    const r = this.db.get<AccountDataRow>('SELECT * FROM store_account_data WHERE user_id = ? AND room_id = ? AND type = ?', userId, roomId ?? '', type);
    return r && entryOf(r);
  }

  async listForUser(userId: string): Promise<AccountDataEntry[]> {
    return this.db.all<AccountDataRow>('SELECT * FROM store_account_data WHERE user_id = ? ORDER BY room_id, type', userId).map(entryOf);
  }

  async countForUser(userId: string, excludeTypes: readonly string[] = []): Promise<number> {
    const excluded = excludeTypes.length ? ` AND type NOT IN (${excludeTypes.map(() => '?').join(', ')})` : '';
    return this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM store_account_data WHERE user_id = ?${excluded}`, userId, ...excludeTypes)?.n ?? 0;
  }

  async deleteForUser(userId: string): Promise<number> {
    return Number(this.db.run('DELETE FROM store_account_data WHERE user_id = ?', userId).changes);
  }
}
