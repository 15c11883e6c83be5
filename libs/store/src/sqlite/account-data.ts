import type { JsonObject } from '@fedgate/protocol';
import type { AccountDataEntry, AccountDataRepository } from '../ports/account-data';
import type { SqliteDatabase } from './database';
import { keyRead, storedKey, UserKeyedTable } from './user-keyed-table';

interface AccountDataRow {
  user_id: string;
  room_id: string;
  type: string;
  content: string;
  updated_ts: number;
}

const entryOf = (r: AccountDataRow): AccountDataEntry => ({
  userId: r.user_id,
  roomId: keyRead(r.room_id),
  type: r.type,
  content: JSON.parse(r.content) as JsonObject,
  updatedTs: r.updated_ts,
});

/** `room_id` is '' for global entries. */
export class SqliteAccountDataRepository implements AccountDataRepository {
  private readonly table: UserKeyedTable;

  constructor(private readonly db: SqliteDatabase) {
    this.table = new UserKeyedTable(db, 'store_account_data', ['user_id', 'room_id', 'type'], { content: 'TEXT', updated_ts: 'INTEGER' });
  }

  async put(entry: AccountDataEntry): Promise<void> {
    this.table.upsert(entry.userId, storedKey(entry.roomId), entry.type, JSON.stringify(entry.content), entry.updatedTs);
  }

  async get(userId: string, roomId: string | null, type: string): Promise<AccountDataEntry | undefined> {
    const r = this.db.get<AccountDataRow>('SELECT * FROM store_account_data WHERE user_id = ? AND room_id = ? AND type = ?', userId, storedKey(roomId), type);
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
    return this.table.deleteForUser(userId);
  }
}
