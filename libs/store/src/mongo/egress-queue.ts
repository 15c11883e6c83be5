import type { JsonObject } from '@fedgate/protocol';
import type { Collection, Document } from 'mongodb';
import type { EgressQueueItem, EgressQueueRepository, PendingEgressTransaction } from '../ports/egress-queue';
import type { DestinationRepository, InFlightTransaction } from '../ports/federation';
import { compoundId, isDuplicateKey, nextCounterValue } from './database';

const toItem = (d: Document): EgressQueueItem => ({
  destination: d.destination,
  position: d.position,
  key: d.key,
  item: JSON.parse(d.item) as JsonObject,
  enqueuedTs: d.enqueuedTs,
});

const toTransaction = (d: Document): PendingEgressTransaction => ({
  destination: d.destination,
  txnId: d.txnId,
  upTo: d.upTo,
  body: JSON.parse(d.body) as JsonObject,
  createdTs: d.createdTs,
});

/**
 * Positions come from one counter document, taken before the insert. Without a transaction, two
 * appends to the same destination racing each other may become visible out of position order, so
 * the egress worker should append to a destination from one place at a time (as it does: one
 * consumer per partition of destinations).
 */
export class MongoEgressQueueRepository implements EgressQueueRepository {
  constructor(
    private readonly queue: Collection<Document>,
    private readonly transactions: Collection<Document>,
    private readonly counters: Collection<Document>,
    private readonly destinations: DestinationRepository,
  ) {}

  async append(destination: string, key: string, item: JsonObject, enqueuedTs: number): Promise<{ position: number; inserted: boolean }> {
    const _id = compoundId(destination, key);
    const existing = await this.queue.findOne({ _id: _id as never }, { projection: { position: 1 } });
    if (existing) return { position: existing.position, inserted: false };
    const position = await nextCounterValue(this.counters, 'egress_queue');
    try {
      await this.queue.insertOne({ _id: _id as never, destination, key, position, item: JSON.stringify(item), enqueuedTs });
      return { position, inserted: true };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const raced = await this.queue.findOne({ _id: _id as never }, { projection: { position: 1 } });
      return { position: raced?.position ?? 0, inserted: false };
    }
  }

  async list(destination: string, afterPosition: number, limit: number): Promise<EgressQueueItem[]> {
    const docs = await this.queue
      .find({ destination, position: { $gt: afterPosition } })
      .sort({ position: 1 })
      .limit(limit)
      .toArray();
    return docs.map(toItem);
  }

  count(destination: string, afterPosition: number): Promise<number> {
    return this.queue.countDocuments({ destination, position: { $gt: afterPosition } });
  }

  async removeUpTo(destination: string, position: number): Promise<number> {
    return (await this.queue.deleteMany({ destination, position: { $lte: position } })).deletedCount;
  }

  async remove(destination: string, positions: number[]): Promise<number> {
    if (positions.length === 0) return 0;
    return (await this.queue.deleteMany({ destination, position: { $in: positions } })).deletedCount;
  }

  async destinationsWithWork(): Promise<string[]> {
    const [queued, pending] = await Promise.all([this.queue.distinct('destination'), this.transactions.distinct('destination')]);
    return [...new Set<string>([...queued, ...pending])].sort();
  }

  async saveTransaction(txn: PendingEgressTransaction): Promise<PendingEgressTransaction> {
    await this.insertBody(txn);
    return (await this.getTransaction(txn.destination, txn.txnId)) as PendingEgressTransaction;
  }

  async getTransaction(destination: string, txnId: string): Promise<PendingEgressTransaction | undefined> {
    const d = await this.transactions.findOne({ _id: compoundId(destination, txnId) as never });
    return d ? toTransaction(d) : undefined;
  }

  async deleteTransaction(destination: string, txnId: string): Promise<void> {
    await this.transactions.deleteOne({ _id: compoundId(destination, txnId) as never });
  }

  // No multi-document transaction here, so the order of the writes is what keeps it sound: the transaction is made
  // the one in flight first, then its body is saved. A death between leaves a transaction in flight that was never
  // sent (sending starts after this returns), and the sender rebuilds its body under the same ID; a begin refused
  // (another in flight) saves nothing. So a body is only ever saved for a transaction in flight, and one found not in
  // flight is over (removeSettledTransactions). The other order left a body behind for every death between.
  async beginTransaction(txn: PendingEgressTransaction): Promise<InFlightTransaction> {
    const inFlight = await this.destinations.beginTransaction(txn.destination, { txnId: txn.txnId, upTo: txn.upTo });
    if (inFlight.txnId === txn.txnId) await this.insertBody(txn);
    return inFlight;
  }

  async settleTransaction(destination: string, txnId: string, upTo: number, nowTs: number): Promise<void> {
    await this.destinations.completeTransaction(destination, txnId, nowTs);
    await this.removeUpTo(destination, upTo);
    await this.deleteTransaction(destination, txnId);
  }

  async removeSettledTransactions(destination: string): Promise<number> {
    const saved = await this.transactions.find({ destination }, { projection: { txnId: 1 } }).toArray();
    if (saved.length === 0) return 0;
    const inFlight = (await this.destinations.get(destination)).inFlight;
    const settled = saved.filter((d) => d.txnId !== inFlight?.txnId).map((d) => d._id);
    if (settled.length === 0) return 0;
    return (await this.transactions.deleteMany({ _id: { $in: settled } })).deletedCount;
  }

  private async insertBody(txn: PendingEgressTransaction): Promise<void> {
    await this.transactions.updateOne(
      { _id: compoundId(txn.destination, txn.txnId) as never },
      { $setOnInsert: { destination: txn.destination, txnId: txn.txnId, upTo: txn.upTo, body: JSON.stringify(txn.body), createdTs: txn.createdTs } },
      { upsert: true },
    );
  }
}
