import type { Collection, Document } from 'mongodb';
import type { RoomRecord, RoomRepository } from '../ports/rooms';
import { compoundId } from './database';

export class MongoRoomRepository implements RoomRepository {
  constructor(
    private readonly rooms: Collection<Document>,
    private readonly extremities: Collection<Document>,
    private readonly joined: Collection<Document>,
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

  async setCurrentState(roomId: string, snapshotId: string): Promise<void> {
    await this.rooms.updateOne({ _id: roomId as never }, { $set: { currentStateId: snapshotId } });
  }

  async getForwardExtremities(roomId: string): Promise<string[]> {
    const docs = await this.extremities.find({ roomId }).toArray();
    return docs.map((d) => d.eventId as string).sort();
  }

  async updateForwardExtremities(roomId: string, change: { add: string[]; remove: string[] }): Promise<void> {
    await pairs(this.extremities, roomId, 'eventId', change);
  }

  async getJoinedServers(roomId: string): Promise<string[]> {
    const docs = await this.joined.find({ roomId }).toArray();
    return docs.map((d) => d.server as string).sort();
  }

  async setJoinedServers(roomId: string, servers: string[]): Promise<void> {
    const wanted = new Set(servers);
    const current = await this.getJoinedServers(roomId);
    await pairs(this.joined, roomId, 'server', { add: servers, remove: current.filter((s) => !wanted.has(s)) });
  }

  async updateJoinedServers(roomId: string, change: { add: string[]; remove: string[] }): Promise<void> {
    await pairs(this.joined, roomId, 'server', change);
  }

  async roomsOfServer(server: string): Promise<string[]> {
    const docs = await this.joined.find({ server }).toArray();
    return docs.map((d) => d.roomId as string).sort();
  }
}

/** Adds then removes (roomId, value) rows, one document each, keyed so that repeats are harmless. */
async function pairs(collection: Collection<Document>, roomId: string, field: string, change: { add: string[]; remove: string[] }): Promise<void> {
  if (change.add.length) {
    await collection.bulkWrite(
      change.add.map((value) => ({
        updateOne: { filter: { _id: compoundId(roomId, value) as never }, update: { $setOnInsert: { roomId, [field]: value } }, upsert: true },
      })),
      { ordered: false },
    );
  }
  const keep = new Set(change.add);
  const remove = change.remove.filter((v) => !keep.has(v)).map((v) => compoundId(roomId, v));
  if (remove.length) await collection.deleteMany({ _id: { $in: remove as never[] } });
}
