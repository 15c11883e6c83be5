import type { PrivateReceipt, PrivateReceiptRepository } from '../ports/private-receipts';
import type { SqliteDatabase } from './database';
import { keyRead, storedKey, UserKeyedTable } from './user-keyed-table';

interface PrivateReceiptRow {
  user_id: string;
  room_id: string;
  thread_id: string;
  event_id: string;
  ts: number;
}

const receiptOf = (r: PrivateReceiptRow): PrivateReceipt => ({ userId: r.user_id, roomId: r.room_id, threadId: keyRead(r.thread_id), eventId: r.event_id, ts: r.ts });

/** `thread_id` is '' for the main timeline. */
export class SqlitePrivateReceiptRepository implements PrivateReceiptRepository {
  private readonly table: UserKeyedTable;

  constructor(private readonly db: SqliteDatabase) {
    this.table = new UserKeyedTable(db, 'store_private_receipts', ['user_id', 'room_id', 'thread_id'], { event_id: 'TEXT', ts: 'INTEGER' });
  }

  async put(receipt: PrivateReceipt): Promise<void> {
    this.table.upsert(receipt.userId, receipt.roomId, storedKey(receipt.threadId), receipt.eventId, receipt.ts);
  }

  async forRoom(userId: string, roomId: string): Promise<PrivateReceipt[]> {
    return this.db.all<PrivateReceiptRow>('SELECT * FROM store_private_receipts WHERE user_id = ? AND room_id = ? ORDER BY thread_id', userId, roomId).map(receiptOf);
  }

  async deleteForUser(userId: string): Promise<number> {
    return this.table.deleteForUser(userId);
  }
}
