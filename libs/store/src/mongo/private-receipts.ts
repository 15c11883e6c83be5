import type { Collection, Document } from 'mongodb';
import type { PrivateReceipt, PrivateReceiptRepository } from '../ports/private-receipts';
import { compoundId } from './database';

/** `_id` = [user, room, thread or '']. */
export class MongoPrivateReceiptRepository implements PrivateReceiptRepository {
  constructor(private readonly receipts: Collection<Document>) {}

  async put(receipt: PrivateReceipt): Promise<void> {
    const thread = receipt.threadId ?? '';
    await this.receipts.replaceOne(
      { _id: compoundId(receipt.userId, receipt.roomId, thread) as never },
      { userId: receipt.userId, roomId: receipt.roomId, threadId: thread, eventId: receipt.eventId, ts: receipt.ts },
      { upsert: true },
    );
  }

  async forRoom(userId: string, roomId: string): Promise<PrivateReceipt[]> {
    const docs = await this.receipts.find({ userId, roomId }).toArray();
    return docs
      .map((d) => ({ userId, roomId, threadId: d.threadId === '' ? null : (d.threadId as string), eventId: d.eventId as string, ts: d.ts as number }))
      .sort((a, b) => ((a.threadId ?? '') < (b.threadId ?? '') ? -1 : 1));
  }

  async deleteForUser(userId: string): Promise<number> {
    return (await this.receipts.deleteMany({ userId })).deletedCount;
  }
}
