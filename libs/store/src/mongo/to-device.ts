import type { Collection, Document } from 'mongodb';
import type { OutgoingToDevice, ToDeviceRepository } from '../ports/to-device';
import { compoundId, isDuplicateKey } from './database';

const toMessage = (d: Document): OutgoingToDevice => ({
  key: d._id as unknown as string,
  sender: d.sender as string,
  type: d.type as string,
  messages: JSON.parse(d.messages as string) as Record<string, unknown>,
  createdTs: d.createdTs as number,
  published: d.published === true,
});

export class MongoToDeviceRepository implements ToDeviceRepository {
  constructor(
    private readonly outbox: Collection<Document>,
    private readonly delivered: Collection<Document>,
  ) {}

  async reserve(message: Omit<OutgoingToDevice, 'published'>) {
    try {
      await this.outbox.insertOne({ _id: message.key as never, sender: message.sender, type: message.type, messages: JSON.stringify(message.messages), createdTs: message.createdTs, published: false });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    return toMessage((await this.outbox.findOne({ _id: message.key as never }))!);
  }

  async markPublished(key: string) {
    await this.outbox.updateOne({ _id: key as never }, { $set: { published: true } });
  }

  async unpublished(limit: number) {
    return (await this.outbox.find({ published: false }).sort({ createdTs: 1 }).limit(limit).toArray()).map(toMessage);
  }

  async wasDelivered(origin: string, sender: string, messageId: string) {
    return (await this.delivered.countDocuments({ _id: compoundId(origin, sender, messageId) as never }, { limit: 1 })) === 1;
  }

  async markDelivered(origin: string, sender: string, messageId: string, now = Date.now()) {
    await this.delivered.updateOne({ _id: compoundId(origin, sender, messageId) as never }, { $setOnInsert: { ts: now } }, { upsert: true });
  }

  async prune(before: number) {
    const delivered = await this.delivered.deleteMany({ ts: { $lt: before } });
    const published = await this.outbox.deleteMany({ published: true, createdTs: { $lt: before } });
    return delivered.deletedCount + published.deletedCount;
  }
}
