import type { Collection, Document } from 'mongodb';
import type { RoomDirectoryEntry, RoomDirectoryRepository } from '../ports/room-directory';

/** One document per room, `_id` = room ID; the `visibility, _id` index serves the public list in order. */
export class MongoRoomDirectoryRepository implements RoomDirectoryRepository {
  constructor(private readonly directory: Collection<Document>) {}

  async set(entry: RoomDirectoryEntry): Promise<void> {
    const { roomId, ...rest } = entry;
    await this.directory.replaceOne({ _id: roomId as never }, rest, { upsert: true });
  }

  async get(roomId: string): Promise<RoomDirectoryEntry | undefined> {
    const d = await this.directory.findOne({ _id: roomId as never });
    return d ? { roomId, visibility: d.visibility, appServiceId: d.appServiceId ?? null, updatedTs: d.updatedTs } : undefined;
  }

  async listPublic(options: { after?: string; limit: number }): Promise<string[]> {
    const filter: Document = { visibility: 'public', ...(options.after !== undefined ? { _id: { $gt: options.after } } : {}) };
    const docs = await this.directory.find(filter, { projection: { _id: 1 } }).sort({ _id: 1 }).limit(options.limit).toArray();
    return docs.map((d) => d._id as unknown as string);
  }

  async countPublic(): Promise<number> {
    return this.directory.countDocuments({ visibility: 'public' });
  }
}
