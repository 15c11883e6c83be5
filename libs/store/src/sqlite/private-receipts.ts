import type { PrivateReceipt, PrivateReceiptRepository } from '../ports/private-receipts';
import type { SqliteDatabase } from './database';

/** `thread_id` is '' for the main timeline (a primary key column may not be NULL in a WITHOUT ROWID table). */
const PRIVATE_RECEIPTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS store_private_receipts (
  user_id TEXT NOT NULL, room_id TEXT NOT NULL, thread_id TEXT NOT NULL, event_id TEXT NOT NULL, ts INTEGER NOT NULL,
  PRIMARY KEY (user_id, room_id, thread_id)
) WITHOUT ROWID;
`;

interface PrivateReceiptRow {
  user_id: string;
  room_id: string;
  thread_id: string;
  event_id: string;
  ts: number;
}

const receiptOf = (r: PrivateReceiptRow): PrivateReceipt => ({ userId: r.user_id, roomId: r.room_id, threadId: r.thread_id === '' ? null : r.thread_id, eventId: r.event_id, ts: r.ts });

export class SqlitePrivateReceiptRepository implements PrivateReceiptRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec(PRIVATE_RECEIPTS_SCHEMA);
  }

  async put(receipt: PrivateReceipt): Promise<void> {
    this.db.run(
      `INSERT INTO store_private_receipts (user_id, room_id, thread_id, event_id, ts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET event_id = excluded.event_id, ts = excluded.ts`,
      receipt.userId,
      receipt.roomId,
      receipt.threadId ?? '',
      receipt.eventId,
      receipt.ts,
    );
  }

  async forRoom(userId: string, roomId: string): Promise<PrivateReceipt[]> {
    return this.db.all<PrivateReceiptRow>('SELECT * FROM store_private_receipts WHERE user_id = ? AND room_id = ? ORDER BY thread_id', userId, roomId).map(receiptOf);
  }

  async deleteForUser(userId: string): Promise<number> {
    return Number(this.db.run('DELETE FROM store_private_receipts WHERE user_id = ?', userId).changes);
  }
}
