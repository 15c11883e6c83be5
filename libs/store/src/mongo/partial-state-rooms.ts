import type { RoomWriteFence } from '../ports/pending-commits';
import type { MongoRoomFences } from './pending-commits';
import type { Collection, Document } from 'mongodb';
import type { PartialStateRoom, PartialStateRoomRepository } from '../ports/partial-state-rooms';

/** One document per room (`_id` = room ID), present only while the room's state is partial. */
export class MongoPartialStateRoomRepository implements PartialStateRoomRepository {
  constructor(
    private readonly rooms: Collection<Document>,
    private readonly fences: MongoRoomFences,
  ) {}

  async begin(room: PartialStateRoom): Promise<void> {
    await this.rooms.replaceOne({ _id: room.roomId as never }, { joinEventId: room.joinEventId, serversInRoom: room.serversInRoom, resident: room.resident, startedTs: room.startedTs }, { upsert: true });
  }

  async get(roomId: string): Promise<PartialStateRoom | undefined> {
    const d = await this.rooms.findOne({ _id: roomId as never });
    return d ? toRoom(d) : undefined;
  }

  async list(): Promise<PartialStateRoom[]> {
    const docs = await this.rooms.find({}).toArray();
    return docs.map(toRoom).sort((a, b) => a.startedTs - b.startedTs || (a.roomId < b.roomId ? -1 : 1));
  }

  async finish(roomId: string, fence?: RoomWriteFence): Promise<void> {
    await this.fences.write(fence, 'end of partial state', { collection: this.rooms, id: roomId }, (guard) => this.rooms.deleteOne({ _id: roomId as never, ...guard.filter }));
  }
}

function toRoom(d: Document): PartialStateRoom {
  return { roomId: String(d._id), joinEventId: d.joinEventId as string, serversInRoom: d.serversInRoom as string[], resident: d.resident as string, startedTs: d.startedTs as number };
}
