import type { RoomWriteFence } from '../ports/pending-commits';
import type { MongoRoomFences } from './pending-commits';
import type { Collection, Document } from 'mongodb';
import type { EventStateRefs } from '../ports/state';
import type { SnapshotRow, SnapshotRowStore } from '../shared/snapshots';
import { findByIds, isDuplicateKey } from './database';

export class MongoSnapshotRows implements SnapshotRowStore {
  constructor(
    private readonly snapshots: Collection<Document>,
    private readonly eventState: Collection<Document>,
    private readonly idLookupsOnly: boolean,
    private readonly fences: MongoRoomFences,
  ) {}

  async putRow(row: SnapshotRow): Promise<void> {
    try {
      await this.snapshots.insertOne({ _id: row.id as never, roomId: row.roomId, baseId: row.baseId, ancestors: row.ancestors, delta: JSON.stringify(row.delta) });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  async getRows(ids: string[]): Promise<SnapshotRow[]> {
    const docs = await findByIds(this.snapshots, ids, this.idLookupsOnly);
    return docs.map((d) => ({ id: d._id as unknown as string, roomId: d.roomId, baseId: d.baseId, ancestors: d.ancestors, delta: JSON.parse(d.delta) }));
  }

  async putEventRefs(eventId: string, refs: EventStateRefs, fence?: RoomWriteFence): Promise<void> {
    await this.fences.write(fence, `state refs of ${eventId}`, { collection: this.eventState, id: eventId }, (guard) =>
      this.eventState.replaceOne({ _id: eventId as never, ...guard.filter }, { before: refs.before, after: refs.after, ...guard.set }, { upsert: true }),
    );
  }

  async getEventRefs(eventId: string): Promise<EventStateRefs | undefined> {
    const d = await this.eventState.findOne({ _id: eventId as never });
    return d ? { before: d.before, after: d.after } : undefined;
  }
}
