import type { Pdu } from '@fedgate/protocol';
import { LRUCache } from 'lru-cache';
import { MongoBulkWriteError, type Collection, type Document } from 'mongodb';
import type { DepthRangeQuery, EventOutcome, EventRecord, EventRepository, EventStatus } from '../ports/events';
import type { RoomWriteFence } from '../ports/pending-commits';
import { findByIds, isDuplicateKey } from './database';
import type { MongoRoomFences } from './pending-commits';

const toDoc = (e: EventRecord): Document => ({
  _id: e.eventId,
  roomId: e.roomId,
  type: e.type,
  stateKey: e.stateKey,
  depth: e.depth,
  prev: e.prevEventIds,
  auth: e.authEventIds,
  pdu: JSON.stringify(e.pdu),
  status: e.status,
  reason: e.reason,
  outlier: e.outlier,
  receivedTs: e.receivedTs,
});

function toRecord(d: Document): EventRecord {
  const record: EventRecord = {
    eventId: d._id as string,
    roomId: d.roomId,
    type: d.type,
    depth: d.depth,
    prevEventIds: d.prev,
    authEventIds: d.auth,
    pdu: JSON.parse(d.pdu) as Pdu,
    status: d.status,
    outlier: d.outlier,
    receivedTs: d.receivedTs,
  };
  if (typeof d.stateKey === 'string') record.stateKey = d.stateKey;
  if (typeof d.reason === 'string') record.reason = d.reason;
  if (typeof d.redactedBy === 'string') record.redactedBy = d.redactedBy;
  return record;
}

/** How many event IDs a process remembers as stored (about 100 bytes each). */
const KNOWN_STORED_IDS = 20_000;

export class MongoEventRepository implements EventRepository {
  /**
   * IDs known to be stored. Events are never removed, so "stored" stays true: `missing` answers for these without
   * a round trip (on FerretDB one lookup per ID; the state-resolver asks for each PDU's prev and auth events).
   */
  private readonly stored = new LRUCache<string, true>({ max: KNOWN_STORED_IDS });

  constructor(
    private readonly events: Collection<Document>,
    private readonly idLookupsOnly: boolean,
    private readonly fences: MongoRoomFences,
  ) {}

  async append(event: EventRecord): Promise<{ inserted: boolean }> {
    try {
      await this.events.insertOne(toDoc(event));
      this.stored.set(event.eventId, true);
      return { inserted: true };
    } catch (err) {
      if (isDuplicateKey(err)) {
        this.stored.set(event.eventId, true);
        return { inserted: false };
      }
      throw err;
    }
  }

  async appendMany(events: EventRecord[]): Promise<{ inserted: string[] }> {
    const seen = new Set<string>();
    const unique = events.filter((e) => !seen.has(e.eventId) && seen.add(e.eventId));
    if (unique.length === 0) return { inserted: [] };
    try {
      await this.events.insertMany(unique.map(toDoc), { ordered: false });
      for (const e of unique) this.stored.set(e.eventId, true);
      return { inserted: unique.map((e) => e.eventId) };
    } catch (err) {
      if (!(err instanceof MongoBulkWriteError)) throw err;
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.some((w) => w.code !== 11000)) throw err;
      // Every one is stored now: inserted here, or there already (duplicate key).
      for (const e of unique) this.stored.set(e.eventId, true);
      const failed = new Set(errors.map((w) => w.index));
      return { inserted: unique.filter((_, i) => !failed.has(i)).map((e) => e.eventId) };
    }
  }

  async get(eventId: string): Promise<EventRecord | undefined> {
    const d = await this.events.findOne({ _id: eventId as never });
    if (d) this.stored.set(eventId, true);
    return d ? toRecord(d) : undefined;
  }

  async getMany(eventIds: string[]): Promise<Map<string, EventRecord>> {
    const docs = await findByIds(this.events, [...new Set(eventIds)], this.idLookupsOnly);
    for (const d of docs) this.stored.set(d._id as unknown as string, true);
    return new Map(docs.map((d) => [d._id as unknown as string, toRecord(d)]));
  }

  async missing(eventIds: string[]): Promise<string[]> {
    const unknown = new Set(eventIds.filter((id) => !this.stored.has(id)));
    const docs = await findByIds(this.events, [...unknown], this.idLookupsOnly, { _id: 1 });
    for (const d of docs) {
      unknown.delete(d._id as unknown as string);
      this.stored.set(d._id as unknown as string, true);
    }
    return eventIds.filter((id) => unknown.has(id));
  }

  async byDepthRange(q: DepthRangeQuery): Promise<EventRecord[]> {
    const filter: Document = { roomId: q.roomId, depth: { $gte: q.minDepth, $lte: q.maxDepth } };
    if (q.excludeRejected !== false) filter.status = { $ne: 'rejected' };
    const docs = await this.events.find(filter).sort({ depth: -1, _id: 1 }).limit(q.limit).toArray();
    return docs.map(toRecord);
  }

  async byStatus(roomId: string, status: EventStatus, limit: number): Promise<EventRecord[]> {
    const docs = await this.events.find({ roomId, status }).sort({ depth: -1, _id: 1 }).limit(limit).toArray();
    return docs.map(toRecord);
  }

  async setOutcome(eventId: string, outcome: EventOutcome, fence?: RoomWriteFence): Promise<boolean> {
    const update: Document =
      outcome.reason === undefined
        ? { $set: { status: outcome.status, outlier: outcome.outlier }, $unset: { reason: '' } }
        : { $set: { status: outcome.status, outlier: outcome.outlier, reason: outcome.reason } };
    const r = await this.fences.write(fence, `outcome of ${eventId}`, { collection: this.events, id: eventId }, (guard) =>
      this.events.updateOne({ _id: eventId as never, ...guard.filter }, { ...update, $set: { ...(update.$set as Document), ...guard.set } }),
    );
    return r.matchedCount > 0;
  }
}
