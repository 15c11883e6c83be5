import type { Collection, Document } from 'mongodb';
import { CommitFencedError, RoomWriteFencedError, type CommitFence, type PendingCommit, type PendingCommitRepository, type RoomWriteFence } from '../ports/pending-commits';
import { nextCounterValue } from './database';

const DUPLICATE_KEY = 11000;

interface CommitItem {
  eventId: string;
  payload: string;
  createdTs: number;
  seq: number;
}

/** A field name for an event ID (which holds `$` and may hold `.`): FerretDB reads dotted paths into documents, not arrays. */
const keyOf = (eventId: string) => `e${Buffer.from(eventId).toString('base64url')}`;

/** What a fenced write adds to its own single-document write: its filter and its `$set` (empty without a fence). */
export interface FenceGuard {
  filter: Document;
  set: Document;
}

/** The field of a document written under a fence that keeps the highest epoch such a write brought to it. */
const STAMP = 'fenceEpoch';

/**
 * Writes of room data under a fence (`RoomWriteFence`), against the fence the room's commits document keeps: the
 * fence is checked and brought up to the write's epoch in one conditional single-document write, then the write is
 * made. FerretDB has no multi-document transactions, so the two are not one atomic unit: a new owner's
 * `raiseFence` landing between them (one store round trip, or a pause of this process there) is not seen by the
 * first. So the write itself also carries the epoch (`guard`): it applies only to a document no write under a newer
 * epoch touched, and stamps it with its own; an old owner's write landing after the new owner's fenced write of the
 * same document is refused (RoomWriteFencedError) rather than undoing it.
 */
export class MongoRoomFences {
  constructor(private readonly rooms: Collection<Document>) {}

  async write<T>(fence: RoomWriteFence | undefined, write: string, target: { collection: Collection<Document>; id: string }, run: (guard: FenceGuard) => Promise<T>): Promise<T> {
    if (!fence) return run({ filter: {}, set: {} });
    try {
      // A room whose fence is above the write's epoch fails the filter, and the upsert's insert collides with it.
      await this.rooms.updateOne(
        { _id: fence.roomId as never, $or: [{ epoch: { $exists: false } }, { epoch: { $lte: fence.epoch } }] },
        { $set: { epoch: fence.epoch, partition: fence.partition } },
        { upsert: true },
      );
    } catch (error) {
      if ((error as { code?: unknown }).code !== DUPLICATE_KEY) throw error;
      const room = await this.rooms.findOne({ _id: fence.roomId as never });
      if (typeof room?.epoch === 'number' && room.epoch > fence.epoch) throw new RoomWriteFencedError(fence.roomId, write, fence.epoch, room.epoch);
      throw error;
    }
    const guard = { filter: { $or: [{ [STAMP]: { $exists: false } }, { [STAMP]: { $lte: fence.epoch } }] }, set: { [STAMP]: fence.epoch } };
    let result: T;
    try {
      result = await run(guard);
    } catch (error) {
      // An upsert whose document is stamped newer: its insert collides with it.
      if ((error as { code?: unknown }).code === DUPLICATE_KEY) await this.refuseIfStampedNewer(fence, write, target);
      throw error;
    }
    const r = result as { matchedCount?: number; upsertedCount?: number; deletedCount?: number } | undefined;
    if (r && (r.deletedCount === 0 || (r.matchedCount === 0 && !r.upsertedCount))) await this.refuseIfStampedNewer(fence, write, target);
    return result;
  }

  private async refuseIfStampedNewer(fence: RoomWriteFence, write: string, target: { collection: Collection<Document>; id: string }): Promise<void> {
    const d = await target.collection.findOne({ _id: target.id as never }, { projection: { [STAMP]: 1 } });
    const stamped = d?.[STAMP] as unknown;
    if (typeof stamped === 'number' && stamped > fence.epoch) throw new RoomWriteFencedError(fence.roomId, write, fence.epoch, stamped);
  }
}

/**
 * One document per room (`_id` = room ID): its commits under way (`commits`, by key of event ID, `n` of them)
 * and its fence (the highest lease epoch a commit or a takeover brought, with the room's partition), so
 * recording a commit and checking the fence are one single-document write (FerretDB has no multi-document
 * transactions). Documents of the earlier layout (one per event, in `legacy`) are still read and removed.
 */
export class MongoPendingCommitRepository implements PendingCommitRepository {
  /**
   * Whether the earlier layout's collection held documents when first looked at. Nothing writes that layout any
   * more, so once it is empty it stays empty and a commit's removal is one write, not two.
   */
  private legacyHeldCommits: Promise<boolean> | undefined;

  constructor(
    private readonly rooms: Collection<Document>,
    private readonly legacy: Collection<Document>,
    private readonly counters: Collection<Document>,
  ) {}

  async add(commit: PendingCommit, fence?: CommitFence): Promise<void> {
    const seq = await nextCounterValue(this.counters, 'pending_commits');
    const item: CommitItem = { eventId: commit.eventId, payload: JSON.stringify(commit.payload), createdTs: commit.createdTs, seq };
    const path = `commits.${keyOf(commit.eventId)}`;
    const filter: Document = { _id: commit.roomId, [path]: { $exists: false } };
    const update: Document = { $set: { [path]: item }, $inc: { n: 1 } };
    if (fence) {
      filter.$or = [{ epoch: { $exists: false } }, { epoch: { $lte: fence.epoch } }];
      update.$set = { ...update.$set, epoch: fence.epoch, partition: fence.partition };
    }
    try {
      // A room whose document fails the filter (fenced, or the commit recorded already) makes the upsert's
      // insert collide with it: nothing is written.
      await this.rooms.updateOne(filter, update, { upsert: true });
    } catch (error) {
      if ((error as { code?: unknown }).code !== DUPLICATE_KEY) throw error;
      const room = await this.rooms.findOne({ _id: commit.roomId as never });
      if (itemsOf(room).some((c) => c.eventId === commit.eventId)) return;
      if (fence && typeof room?.epoch === 'number' && room.epoch > fence.epoch) throw new CommitFencedError(commit.roomId, commit.eventId, fence.epoch, room.epoch);
      throw error;
    }
  }

  async raiseFence(fence: CommitFence): Promise<void> {
    await this.rooms.updateMany({ partition: fence.partition, epoch: { $lt: fence.epoch } }, { $set: { epoch: fence.epoch } });
  }

  async get(eventId: string): Promise<PendingCommit | undefined> {
    const room = await this.rooms.findOne({ [`commits.${keyOf(eventId)}`]: { $exists: true } });
    const item = itemsOf(room).find((c) => c.eventId === eventId);
    if (room && item) return toCommit(String(room._id), item);
    const d = await this.legacy.findOne({ _id: eventId as never });
    return d ? toCommit(d.roomId as string, { eventId: String(d._id), payload: d.payload as string, createdTs: d.createdTs as number, seq: d.seq as number }) : undefined;
  }

  async list(roomId?: string): Promise<PendingCommit[]> {
    const items: Array<{ roomId: string; item: CommitItem }> = [];
    for (const room of await this.rooms.find(roomId === undefined ? { n: { $gt: 0 } } : { _id: roomId as never }).toArray()) {
      for (const item of itemsOf(room)) items.push({ roomId: String(room._id), item });
    }
    for (const d of await this.legacy.find(roomId === undefined ? {} : { roomId }).toArray()) {
      items.push({ roomId: d.roomId as string, item: { eventId: String(d._id), payload: d.payload as string, createdTs: d.createdTs as number, seq: d.seq as number } });
    }
    return items.sort((a, b) => a.item.seq - b.item.seq).map(({ roomId: room, item }) => toCommit(room, item));
  }

  async remove(eventId: string, roomId?: string): Promise<void> {
    const path = `commits.${keyOf(eventId)}`;
    // By room ID the server finds the document by _id (FerretDB's SQLite backend scans for anything else).
    await this.rooms.updateOne({ ...(roomId === undefined ? {} : { _id: roomId as never }), [path]: { $exists: true } }, { $unset: { [path]: '' }, $inc: { n: -1 } });
    if (await this.legacyHasCommits()) await this.legacy.deleteOne({ _id: eventId as never });
  }

  private legacyHasCommits(): Promise<boolean> {
    this.legacyHeldCommits ??= this.legacy.findOne({}, { projection: { _id: 1 } }).then(
      (d) => d !== null,
      (error: unknown) => {
        this.legacyHeldCommits = undefined;
        throw error;
      },
    );
    return this.legacyHeldCommits;
  }

  /** One at a time: each removal decrements the room's count only if its commit was there. */
  async removeAll(roomId: string, eventIds: readonly string[]): Promise<void> {
    for (const eventId of eventIds) await this.remove(eventId, roomId);
  }
}

function itemsOf(room: Document | null): CommitItem[] {
  return Object.values((room?.commits as Record<string, CommitItem> | undefined) ?? {});
}

function toCommit(roomId: string, item: CommitItem): PendingCommit {
  return { eventId: item.eventId, roomId, payload: JSON.parse(item.payload) as Record<string, unknown>, createdTs: item.createdTs };
}
