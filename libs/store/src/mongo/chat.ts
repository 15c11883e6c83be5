import type { Collection, Document } from 'mongodb';
import type {
  AliasRecord,
  AliasRepository,
  AppServiceQueueItem,
  AppServiceQueueRepository,
  AppServiceTransaction,
  LocalMembershipRepository,
  ProfileRecord,
  ProfileRepository,
} from '../ports/chat';
import { fillAppServiceTransaction, type QueuedAppServiceItem } from '../shared/app-service-transactions';
import { compoundId, isDuplicateKey, nextCounterValue } from './database';

export class MongoProfileRepository implements ProfileRepository {
  constructor(private readonly profiles: Collection<Document>) {}

  async create(p: ProfileRecord): Promise<{ created: boolean }> {
    try {
      await this.profiles.insertOne({ _id: p.userId as never, displayname: p.displayname, avatarUrl: p.avatarUrl, appServiceId: p.appServiceId, createdTs: p.createdTs });
      return { created: true };
    } catch (err) {
      if (isDuplicateKey(err)) return { created: false };
      throw err;
    }
  }

  async get(userId: string): Promise<ProfileRecord | undefined> {
    const d = await this.profiles.findOne({ _id: userId as never });
    return d ? { userId, displayname: d.displayname ?? null, avatarUrl: d.avatarUrl ?? null, appServiceId: d.appServiceId ?? null, createdTs: d.createdTs } : undefined;
  }

  async update(userId: string, change: { displayname?: string | null; avatarUrl?: string | null }): Promise<ProfileRecord | undefined> {
    const set: Document = {};
    if (change.displayname !== undefined) set.displayname = change.displayname;
    if (change.avatarUrl !== undefined) set.avatarUrl = change.avatarUrl;
    if (Object.keys(set).length) await this.profiles.updateOne({ _id: userId as never }, { $set: set });
    return this.get(userId);
  }
}

const aliasOf = (d: Document): AliasRecord => ({ alias: d._id as string, roomId: d.roomId, servers: d.servers, creator: d.creator, createdTs: d.createdTs });

export class MongoAliasRepository implements AliasRepository {
  constructor(private readonly aliases: Collection<Document>) {}

  async create(a: AliasRecord): Promise<{ created: boolean; existing?: AliasRecord }> {
    try {
      await this.aliases.insertOne({ _id: a.alias as never, roomId: a.roomId, servers: a.servers, creator: a.creator, createdTs: a.createdTs });
      return { created: true };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return { created: false, existing: await this.get(a.alias) };
    }
  }

  async get(alias: string): Promise<AliasRecord | undefined> {
    const d = await this.aliases.findOne({ _id: alias as never });
    return d ? aliasOf(d) : undefined;
  }

  async remove(alias: string): Promise<boolean> {
    return (await this.aliases.deleteOne({ _id: alias as never })).deletedCount > 0;
  }

  async forRoom(roomId: string): Promise<AliasRecord[]> {
    const docs = await this.aliases.find({ roomId }).sort({ _id: 1 }).toArray();
    return docs.map(aliasOf);
  }
}

export class MongoLocalMembershipRepository implements LocalMembershipRepository {
  constructor(private readonly memberships: Collection<Document>) {}

  async set(userId: string, roomId: string, membership: string, eventId: string): Promise<void> {
    const write = () => this.memberships.replaceOne({ _id: compoundId(userId, roomId) as never }, { userId, roomId, membership, eventId }, { upsert: true });
    try {
      await write();
    } catch (err) {
      // Two concurrent upserts of a new _id: one inserts, the other fails with a duplicate key; it now matches.
      if ((err as { code?: number }).code !== 11000) throw err;
      await write();
    }
  }

  async roomsOf(userId: string, membership: string): Promise<string[]> {
    const docs = await this.memberships.find({ userId, membership }).toArray();
    return docs.map((d) => d.roomId as string).sort();
  }
}

/**
 * Queue items are numbered from a counter; the open transaction lives on the service's own document
 * and is claimed with one conditional update (open still null, same next ID), so two callers cannot
 * open two transactions; it keeps the IDs of the items it carries, and the ack removes those only. Ack marks the items delivered, deletes them, then closes: a crash between
 * re-sends the same transaction, which the AS API allows (same txnId). Enqueue looks in the queue
 * before the delivered marks, so an ack deleting the item meanwhile has marked it already.
 */
export class MongoAppServiceQueueRepository implements AppServiceQueueRepository {
  constructor(
    private readonly queue: Collection<Document>,
    private readonly txns: Collection<Document>,
    private readonly delivered: Collection<Document>,
    private readonly counters: Collection<Document>,
  ) {}

  async enqueue(appServiceId: string, item: AppServiceQueueItem): Promise<{ inserted: boolean; delivered?: true }> {
    const _id = compoundId(appServiceId, item.itemId);
    if (await this.queue.findOne({ _id: _id as never }, { projection: { _id: 1 } })) return { inserted: false };
    if (await this.delivered.findOne({ _id: _id as never }, { projection: { _id: 1 } })) return { inserted: false, delivered: true };
    const seq = await nextCounterValue(this.counters, 'app_service_queue');
    try {
      await this.queue.insertOne({ _id: _id as never, appServiceId, itemId: item.itemId, kind: item.kind, event: JSON.stringify(item.event), seq });
      return { inserted: true };
    } catch (err) {
      if (isDuplicateKey(err)) return { inserted: false };
      throw err;
    }
  }

  async enqueueMany(appServiceId: string, items: readonly AppServiceQueueItem[]): Promise<Array<{ inserted: boolean; delivered?: true }>> {
    const results: Array<{ inserted: boolean; delivered?: true }> = [];
    for (const item of items) results.push(await this.enqueue(appServiceId, item));
    return results;
  }

  async openTransaction(appServiceId: string, limits: { maxEvents: number; maxEphemeral: number }): Promise<AppServiceTransaction | null> {
    await this.txns.updateOne({ _id: appServiceId as never }, { $setOnInsert: { nextTxnId: 1, open: null } }, { upsert: true });
    for (;;) {
      const state = (await this.txns.findOne({ _id: appServiceId as never })) as Document;
      if (state.open) return JSON.parse(state.open.body) as AppServiceTransaction;
      const items = await this.queue
        .find({ appServiceId })
        .sort({ seq: 1 })
        .limit(limits.maxEvents + limits.maxEphemeral)
        .toArray();
      const filled = fillAppServiceTransaction(String(state.nextTxnId), items as unknown as QueuedAppServiceItem[], limits);
      if (!filled) return null;
      const { transaction, lastSeq } = filled;
      const itemIds = items.filter((item) => (item.seq as number) <= lastSeq).map((item) => item._id);
      const claimed = await this.txns.updateOne(
        { _id: appServiceId as never, open: null, nextTxnId: state.nextTxnId },
        { $inc: { nextTxnId: 1 }, $set: { open: { txnId: transaction.txnId, lastSeq, itemIds, body: JSON.stringify(transaction) } } },
      );
      if (claimed.modifiedCount === 1) return transaction;
    }
  }

  async ackTransaction(appServiceId: string, txnId: string): Promise<void> {
    const state = await this.txns.findOne({ _id: appServiceId as never });
    if (!state?.open || state.open.txnId !== txnId) return;
    // By ID: an item numbered before the transaction was opened but inserted after (two enqueuers) is not in it.
    // A transaction opened before the IDs were kept (no itemIds) falls back to its highest sequence.
    const carried: Document = state.open.itemIds ? { _id: { $in: state.open.itemIds } } : { seq: { $lte: state.open.lastSeq } };
    const items = await this.queue.find({ appServiceId, ...carried }, { projection: { _id: 1 } }).toArray();
    if (items.length > 0) {
      const deliveredTs = Date.now();
      await this.delivered.bulkWrite(
        items.map((item) => ({ updateOne: { filter: { _id: item._id }, update: { $setOnInsert: { appServiceId, deliveredTs } }, upsert: true } })),
        { ordered: false },
      );
    }
    await this.queue.deleteMany({ appServiceId, ...carried });
    await this.txns.updateOne({ _id: appServiceId as never, 'open.txnId': txnId }, { $set: { open: null } });
  }

  pendingCount(appServiceId: string): Promise<number> {
    return this.queue.countDocuments({ appServiceId });
  }

  async pruneDelivered(deliveredBefore: number): Promise<number> {
    return (await this.delivered.deleteMany({ deliveredTs: { $lt: deliveredBefore } })).deletedCount;
  }
}
