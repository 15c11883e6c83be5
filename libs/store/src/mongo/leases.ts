import type { Collection, Document } from 'mongodb';
import type { LeaseRepository, LiveLease } from '../ports/leases';
import { nextCounterValue } from './database';

const DUPLICATE_KEY = 11000;

export class MongoLeaseRepository implements LeaseRepository {
  constructor(
    private readonly leases: Collection<Document>,
    private readonly counters: Collection<Document>,
  ) {}

  async acquireWithEpoch(name: string, holder: string, ttlMs: number, now = Date.now()): Promise<number | undefined> {
    // Still ours (even past its expiry, as long as nobody took it since): renewed, same epoch.
    const own = await this.leases.findOneAndUpdate({ _id: name as never, holder, epoch: { $exists: true } }, { $set: { expiresTs: now + ttlMs } }, { returnDocument: 'after' });
    if (own) return Number(own.epoch);
    const epoch = await nextCounterValue(this.counters, 'lease_epochs');
    try {
      await this.leases.updateOne({ _id: name as never, $or: [{ expiresTs: { $lte: now } }, { holder }] }, { $set: { holder, expiresTs: now + ttlMs, epoch } }, { upsert: true });
      return epoch;
    } catch (error) {
      if ((error as { code?: unknown }).code === DUPLICATE_KEY) return undefined;
      throw error;
    }
  }

  async tryAcquire(name: string, holder: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    try {
      // Matches a free (expired) lease or our own; when the lease is held by another, the upsert's insert
      // collides with the existing _id and the lease stays theirs.
      await this.leases.updateOne({ _id: name as never, $or: [{ expiresTs: { $lte: now } }, { holder }] }, { $set: { holder, expiresTs: now + ttlMs } }, { upsert: true });
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === DUPLICATE_KEY) return false;
      throw error;
    }
  }

  async release(name: string, holder: string): Promise<void> {
    await this.leases.deleteOne({ _id: name as never, holder });
  }

  async renewMany(names: readonly string[], holder: string, ttlMs: number, now = Date.now()): Promise<string[]> {
    if (names.length === 0) return [];
    await this.leases.updateMany({ _id: { $in: names } as never, holder }, { $set: { expiresTs: now + ttlMs } });
    const kept = await this.leases.find({ _id: { $in: names } as never, holder, expiresTs: now + ttlMs }).toArray();
    return kept.map((d) => String(d._id));
  }

  async live(prefix: string, now = Date.now()): Promise<LiveLease[]> {
    const docs = await this.leases
      .find({ _id: { $gte: prefix, $lt: `${prefix}\uffff` } as never, expiresTs: { $gt: now } })
      .sort({ _id: 1 })
      .toArray();
    return docs.map((d) => ({ name: String(d._id), holder: String(d.holder), expiresTs: Number(d.expiresTs) }));
  }
}
