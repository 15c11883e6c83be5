import type { Collection, Document } from 'mongodb';
import type { LeaseRepository } from '../ports/leases';

const DUPLICATE_KEY = 11000;

export class MongoLeaseRepository implements LeaseRepository {
  constructor(private readonly leases: Collection<Document>) {}

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
}
