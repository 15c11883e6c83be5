import type { RoomWriteFence } from '../ports/pending-commits';
import type { MongoRoomFences } from './pending-commits';
import type { Collection, Document } from 'mongodb';
import type { RoomRecord, RoomRepository } from '../ports/rooms';

export class MongoRoomRepository implements RoomRepository {
  constructor(
    private readonly rooms: Collection<Document>,
    private readonly extremities: Collection<Document>,
    private readonly joined: Collection<Document>,
    private readonly fences: MongoRoomFences,
  ) {}

  async ensure(room: { roomId: string; roomVersion: string; creator: string; createdTs: number }): Promise<RoomRecord> {
    await this.rooms.updateOne(
      { _id: room.roomId as never },
      { $setOnInsert: { roomVersion: room.roomVersion, creator: room.creator, createdTs: room.createdTs, currentStateId: null } },
      { upsert: true },
    );
    return (await this.get(room.roomId)) as RoomRecord;
  }

  async get(roomId: string): Promise<RoomRecord | undefined> {
    const d = await this.rooms.findOne({ _id: roomId as never });
    return d ? { roomId, roomVersion: d.roomVersion, creator: d.creator, createdTs: d.createdTs, currentStateId: d.currentStateId ?? null } : undefined;
  }

  async setCurrentState(roomId: string, snapshotId: string, fence?: RoomWriteFence): Promise<void> {
    await this.fences.write(fence, 'current state', { collection: this.rooms, id: roomId }, (guard) =>
      this.rooms.updateOne({ _id: roomId as never, ...guard.filter }, { $set: { currentStateId: snapshotId, ...guard.set } }),
    );
  }

  async getForwardExtremities(roomId: string): Promise<string[]> {
    const d = await this.extremities.findOne({ _id: roomId as never });
    const byKey = Object.values((d?.byKey as Record<string, string> | undefined) ?? {});
    return [...new Set([...((d?.eventIds as string[] | undefined) ?? []), ...byKey])].sort();
  }

  /**
   * One write per change (it was two: an array cannot be added to and pulled from in one update): each extremity is
   * a field of `byKey`, so adding some and removing others is one single-document update, atomic like any. A room
   * written by the earlier layout keeps its `eventIds` array until its extremities are removed from it.
   */
  async updateForwardExtremities(roomId: string, change: { add: string[]; remove: string[] }, fence?: RoomWriteFence): Promise<void> {
    const keep = new Set(change.add);
    const remove = change.remove.filter((v) => !keep.has(v));
    if (!change.add.length && !remove.length) return;
    const update: Document = {};
    if (change.add.length) update.$set = Object.fromEntries(change.add.map((id) => [`byKey.${fieldKey(id)}`, id]));
    if (remove.length) {
      update.$unset = Object.fromEntries(remove.map((id) => [`byKey.${fieldKey(id)}`, '']));
      update.$pullAll = { eventIds: remove };
    }
    await this.fences.write(fence, 'forward extremities', { collection: this.extremities, id: roomId }, (guard) =>
      this.extremities.updateOne({ _id: roomId as never, ...guard.filter }, { ...update, $set: { ...(update.$set as Document | undefined), ...guard.set } }, { upsert: true }),
    );
  }

  async getJoinedServers(roomId: string): Promise<string[]> {
    return members(this.joined, roomId, 'servers');
  }

  async setJoinedServers(roomId: string, servers: string[], fence?: RoomWriteFence): Promise<void> {
    await this.fences.write(fence, 'joined servers', { collection: this.joined, id: roomId }, (guard) =>
      this.joined.updateOne({ _id: roomId as never, ...guard.filter }, { $set: { servers: [...new Set(servers)].sort(), ...guard.set } }, { upsert: true }),
    );
  }

  async updateJoinedServers(roomId: string, change: { add: string[]; remove: string[] }): Promise<void> {
    await changeMembers(this.joined, roomId, 'servers', change);
  }

  async roomsOfServer(server: string): Promise<string[]> {
    const docs = await this.joined.find({ servers: server }, { projection: { _id: 1 } }).toArray();
    return docs.map((d) => d._id as unknown as string).sort();
  }
}

/** A field name for an event ID (which holds `$` and may hold `.`). */
const fieldKey = (eventId: string) => `e${Buffer.from(eventId).toString('base64url')}`;

// A room's joined servers (and extremities, above) are each one document holding a set, found by `_id`
// (the only lookup FerretDB answers without a scan) and changed by single-document updates.
async function members(collection: Collection<Document>, roomId: string, field: string): Promise<string[]> {
  const d = await collection.findOne({ _id: roomId as never });
  return ((d?.[field] as string[] | undefined) ?? []).slice().sort();
}

/** Adds, then removes (a value in both stays): there is never a moment with neither old nor new. */
async function changeMembers(collection: Collection<Document>, roomId: string, field: string, change: { add: string[]; remove: string[] }): Promise<void> {
  if (change.add.length) await collection.updateOne({ _id: roomId as never }, { $addToSet: { [field]: { $each: change.add } } }, { upsert: true });
  const keep = new Set(change.add);
  const remove = change.remove.filter((v) => !keep.has(v));
  if (!remove.length) return;
  const pull: Document = { $pullAll: { [field]: remove } };
  await collection.updateOne({ _id: roomId as never }, pull);
}
