// Chaos finding (kill -9 of federation-ingress held b's origin ~2 minutes), on the distributed shape's store: two
// replicas' origin locks, each on its own connection to one MongoDB-wire database, with a short lease.
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { openMongoStore, type LeaseRepository, type Store } from '@fedgate/store';
import { OriginLock } from './origin-lock';

const TTL_MS = 600;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('origin lock on the MongoDB-wire store: a short lease renewed while held (chaos finding)', () => {
  const database = `fedgate_ol_${randomBytes(4).toString('hex')}`;
  let storeA: Store;
  let storeB: Store;

  beforeAll(async () => {
    storeA = await openMongoStore(process.env.FEDGATE_TEST_MONGO_URL!, database);
    storeB = await openMongoStore(process.env.FEDGATE_TEST_MONGO_URL!, database);
  });
  afterAll(async () => {
    await storeA?.close();
    await storeB?.close();
    const client = await MongoClient.connect(process.env.FEDGATE_TEST_MONGO_URL!);
    await client.db(database).dropDatabase();
    await client.close();
  });

  /** Replica A's leases; after `kill()` its renewals never reach the store (the process is gone). */
  function killable(leases: LeaseRepository) {
    let killed = false;
    const wrapped: LeaseRepository = {
      tryAcquire: (...args) => leases.tryAcquire(...args),
      acquireWithEpoch: (...args) => leases.acquireWithEpoch(...args),
      release: (...args) => leases.release(...args),
      renewMany: (...args) => (killed ? new Promise<string[]>(() => undefined) : leases.renewMany(...args)),
      live: (...args) => leases.live(...args),
    };
    return { leases: wrapped, kill: () => (killed = true) };
  }

  it('a live replica keeps the origin through a transaction several TTLs long; once it is killed the other takes the origin after the TTL', async () => {
    const a = killable(storeA.leases);
    const lockA = new OriginLock(a.leases, TTL_MS);
    const lockB = new OriginLock(storeB.leases, TTL_MS);
    const releaseA = await lockA.tryAcquire('b.test');
    expect(releaseA).toBeDefined();
    // A's transaction runs five TTLs; B is asked every 100 ms (the origin's retries reaching it) and never gets it.
    for (let i = 0; i < (5 * TTL_MS) / 100; i++) {
      await sleep(100);
      expect(await lockB.tryAcquire('b.test')).toBeUndefined();
    }
    a.kill();
    let releaseB: (() => Promise<void>) | undefined;
    for (let attempt = 0; !releaseB && attempt < 100; attempt++) {
      await sleep(100);
      releaseB = await lockB.tryAcquire('b.test');
    }
    expect(releaseB).toBeDefined();
    // A's transaction (or its stop) ending late gives back nothing of B's holding.
    await releaseA!();
    const lockC = new OriginLock(storeA.leases, TTL_MS);
    expect(await lockC.tryAcquire('b.test')).toBeUndefined();
    await releaseB!();
    const releaseC = await lockC.tryAcquire('b.test');
    expect(releaseC).toBeDefined();
    await releaseC!();
  });
});
