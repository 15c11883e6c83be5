import type { Collection, Document } from 'mongodb';
import type { JsonObject } from '@fedgate/protocol';
import type { AccountDataEntry, AccountDataRepository } from '../ports/account-data';
import { compoundId } from './database';

/** `_id` = [user, room or '', type]; content kept as a JSON string (its keys are the client's). */
export class MongoAccountDataRepository implements AccountDataRepository {
  constructor(private readonly accountData: Collection<Document>) {}

  async put(entry: AccountDataEntry): Promise<void> {
    const room = entry.roomId ?? '';
    await this.accountData.replaceOne(
      { _id: compoundId(entry.userId, room, entry.type) as never },
      { userId: entry.userId, roomId: room, type: entry.type, content: JSON.stringify(entry.content), updatedTs: entry.updatedTs },
      { upsert: true },
    );
  }

  async get(userId: string, roomId: string | null, type: string): Promise<AccountDataEntry | undefined> {
    const d = await this.accountData.findOne({ _id: compoundId(userId, roomId ?? '', type) as never });
    return d ? entryOf(d) : undefined;
  }

  async listForUser(userId: string): Promise<AccountDataEntry[]> {
    const docs = await this.accountData.find({ userId }).toArray();
    const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    return docs.map(entryOf).sort((a, b) => order(a.roomId ?? '', b.roomId ?? '') || order(a.type, b.type));
  }

  async countForUser(userId: string, excludeTypes: readonly string[] = []): Promise<number> {
    return this.accountData.countDocuments({ userId, ...(excludeTypes.length ? { type: { $nin: [...excludeTypes] } } : {}) });
  }

  async deleteForUser(userId: string): Promise<number> {
    return (await this.accountData.deleteMany({ userId })).deletedCount;
  }
}

const entryOf = (d: Document): AccountDataEntry => ({
  userId: d.userId as string,
  roomId: d.roomId === '' ? null : (d.roomId as string),
  type: d.type as string,
  content: JSON.parse(d.content as string) as JsonObject,
  updatedTs: d.updatedTs as number,
});
