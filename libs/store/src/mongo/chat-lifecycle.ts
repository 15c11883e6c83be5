import type { Collection, Document } from 'mongodb';
import type { ChatLifecycleRepository, DeactivatedUserRecord, ForgottenRoomRecord, RoomDeletionRecord } from '../ports/chat-lifecycle';
import { compoundId, isDuplicateKey } from './database';

const deletionOf = (d: Document): RoomDeletionRecord => ({
  roomId: d._id as string,
  deleteId: d.deleteId,
  deletedTs: d.deletedTs,
  appServiceId: d.appServiceId ?? null,
  blocked: d.blocked === true,
  purged: d.purged === true,
  result: JSON.parse(d.result),
});

/** One document per key; `erased` is raised with a plain $set, so no read-modify-write. */
export class MongoChatLifecycleRepository implements ChatLifecycleRepository {
  constructor(
    private readonly deactivatedUsers: Collection<Document>,
    private readonly roomDeletions: Collection<Document>,
    private readonly forgottenRooms: Collection<Document>,
  ) {}

  async deactivate(record: DeactivatedUserRecord): Promise<{ created: boolean; record: DeactivatedUserRecord }> {
    let created = true;
    try {
      await this.deactivatedUsers.insertOne({ _id: record.userId as never, deactivatedTs: record.deactivatedTs, erased: record.erased, appServiceId: record.appServiceId });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      created = false;
      if (record.erased) await this.deactivatedUsers.updateOne({ _id: record.userId as never }, { $set: { erased: true } });
    }
    return { created, record: (await this.getDeactivated(record.userId)) as DeactivatedUserRecord };
  }

  async getDeactivated(userId: string): Promise<DeactivatedUserRecord | undefined> {
    const d = await this.deactivatedUsers.findOne({ _id: userId as never });
    return d ? { userId, deactivatedTs: d.deactivatedTs, erased: d.erased === true, appServiceId: d.appServiceId ?? null } : undefined;
  }

  async recordRoomDeletion(record: RoomDeletionRecord): Promise<void> {
    const { roomId, result, ...rest } = record;
    await this.roomDeletions.replaceOne({ _id: roomId as never }, { ...rest, result: JSON.stringify(result) }, { upsert: true });
  }

  async getRoomDeletion(roomId: string): Promise<RoomDeletionRecord | undefined> {
    const d = await this.roomDeletions.findOne({ _id: roomId as never });
    return d ? deletionOf(d) : undefined;
  }

  async getRoomDeletionById(deleteId: string): Promise<RoomDeletionRecord | undefined> {
    const d = await this.roomDeletions.findOne({ deleteId });
    return d ? deletionOf(d) : undefined;
  }

  async forget(record: ForgottenRoomRecord): Promise<void> {
    const { userId, roomId, membershipEventId, forgottenTs } = record;
    await this.forgottenRooms.replaceOne({ _id: compoundId(userId, roomId) as never }, { userId, roomId, membershipEventId, forgottenTs }, { upsert: true });
  }

  async getForgotten(userId: string, roomId: string): Promise<ForgottenRoomRecord | undefined> {
    const d = await this.forgottenRooms.findOne({ _id: compoundId(userId, roomId) as never });
    return d ? { userId, roomId, membershipEventId: d.membershipEventId, forgottenTs: d.forgottenTs } : undefined;
  }
}
