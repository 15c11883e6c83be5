import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { describeAccountDataContract } from '../testing/account-data-contract';
import { describeChatStoreContract } from '../testing/chat-contract';
import { describeLeaseContract } from '../testing/lease-contract';
import { describeDeviceKeyContract } from '../testing/device-keys-contract';
import { describeStoreContract } from '../testing/store-contract';
import { MongoAppServiceQueueRepository } from './chat';
import { openMongoStore } from './store';

// The real MongoDB-wire database started once per run by test/support (MongoDB or FerretDB).
const url = process.env.FEDGATE_TEST_MONGO_URL as string;
const db = `fedgate_store_contract_${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  const client = await MongoClient.connect(url);
  await client.db(db).dropDatabase();
  await client.close();
});

describeStoreContract('mongo', () => openMongoStore(url, db), { reopen: () => openMongoStore(url, db) });
describeChatStoreContract('mongo', () => openMongoStore(url, db));
describeLeaseContract('mongo', () => openMongoStore(url, db));
describeDeviceKeyContract('mongo', () => openMongoStore(url, db));

// Issue 13: no multi-document transactions here, so a device change marks its document in the same write;
// a process dying before the stream move and the change log is finished by finishPendingChanges (chat-sync
// runs it on start and every minute), and the change's EDU goes out from the log.
describe('device changes cut short (mongo)', () => {
  it('a change and a delete marked but never logged are finished: stream moved, logged unannounced, marks cleared', async () => {
    const store = await openMongoStore(url, db);
    const client = await MongoClient.connect(url);
    try {
      const user = `@cut-${randomBytes(3).toString('hex')}:gw.test`;
      await store.deviceKeys.putDevice(user, 'GONE');
      const devices = client.db(db).collection('devices');
      const since = Date.now() - 120_000;
      // As a process dying right after the device writes would leave them.
      await devices.insertOne({ _id: JSON.stringify([user, 'NEW']) as never, userId: user, deviceId: 'NEW', displayName: null, keys: null, createdTs: since, pending: { kind: 'change', since } });
      await devices.updateOne({ _id: JSON.stringify([user, 'GONE']) as never }, { $set: { pending: { kind: 'delete', since } } });
      expect((await store.deviceKeys.listDevices(user)).map((d) => d.deviceId)).toEqual(['NEW']);
      const before = await store.deviceLists.latestPosition();
      expect(await store.deviceKeys.finishPendingChanges(Date.now() - 60_000)).toBeGreaterThanOrEqual(2);
      expect(await store.deviceKeys.deviceListStreamId(user)).toBe(3);
      const logged = (await store.deviceLists.unannounced(100_000)).filter((c) => c.userId === user && c.position > before);
      expect(logged.map((c) => c.deviceId).sort()).toEqual(['GONE', 'NEW']);
      expect(await devices.countDocuments({ userId: user, pending: { $exists: true } })).toBe(0);
      expect((await store.deviceKeys.listDevices(user)).map((d) => d.deviceId)).toEqual(['NEW']);
      expect(await store.deviceKeys.finishPendingChanges(Date.now() - 60_000)).toBe(0);
    } finally {
      await client.close();
      await store.close();
    }
  });
});
describeAccountDataContract('mongo', () => openMongoStore(url, db));

// chaos-dup: an ack is three writes here (delivered marks, delete, close). Cut after any of them, the same transaction
// is opened again (same txnId and events: the AS may take it as a retry) and the item handed over again meanwhile
// (a redelivered push) is not queued.
describe('an AS transaction ack cut short (mongo)', () => {
  it.each([
    ['after the delivered marks', 'deleteMany'],
    ['after the delete, before the close', 'updateOne'],
  ])('cut %s: the same transaction again, the item not queued again', async (_where, failingCall) => {
    const client = await MongoClient.connect(url);
    try {
      const database = client.db(db);
      const queue = database.collection('app_service_queue');
      const txns = database.collection('app_service_txns');
      let cut = false;
      const failOnce = <T extends object>(collection: T, method: string): T =>
        new Proxy(collection, {
          get: (target, key) => {
            const value = Reflect.get(target, key) as unknown;
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => {
              if (cut && key === method) {
                cut = false;
                return Promise.reject(new Error('process killed here'));
              }
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          },
        });
      const repo = new MongoAppServiceQueueRepository(
        failingCall === 'deleteMany' ? failOnce(queue, 'deleteMany') : queue,
        failingCall === 'updateOne' ? failOnce(txns, 'updateOne') : txns,
        database.collection('app_service_delivered'),
        database.collection('counters'),
      );
      const as = `as-cut-${randomBytes(3).toString('hex')}`;
      await repo.enqueue(as, { itemId: '$x', kind: 'event', event: { id: '$x' } });
      // The claim is an updateOne too: arm the cut only for the ack.
      const opened = await repo.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 });
      cut = true;
      await expect(repo.ackTransaction(as, opened!.txnId)).rejects.toThrow('process killed here');
      expect((await repo.enqueue(as, { itemId: '$x', kind: 'event', event: { id: '$x' } })).inserted).toBe(false);
      expect(await repo.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 })).toEqual(opened);
      await repo.ackTransaction(as, opened!.txnId);
      expect((await repo.enqueue(as, { itemId: '$x', kind: 'event', event: { id: '$x' } })).inserted).toBe(false);
      expect(await repo.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 })).toBeNull();
    } finally {
      await client.close();
    }
  });
});

// as-queue-safety: an enqueue takes its sequence number before inserting. Two enqueuers at once (a handover with the
// old handler still running): one numbered first inserts after the other's item was put in a transaction. The ack
// deleted every queued item up to the transaction's highest sequence, so the late one went undelivered.
describe('AS queue: an item numbered before a transaction was opened but inserted after (mongo)', () => {
  it('the ack removes only the items the transaction carried; the late item goes in the next transaction', async () => {
    const client = await MongoClient.connect(url);
    try {
      const database = client.db(db);
      const queue = database.collection('app_service_queue');
      let releaseInsert: (() => void) | undefined;
      let insertHeld: (() => void) | undefined;
      const insertReached = new Promise<void>((resolve) => (insertHeld = resolve));
      const heldQueue = new Proxy(queue, {
        get: (target, key) => {
          const value = Reflect.get(target, key) as unknown;
          if (typeof value !== 'function') return value;
          if (key !== 'insertOne') return (value as (...a: unknown[]) => unknown).bind(target);
          return async (...args: unknown[]) => {
            if ((args[0] as { itemId?: string }).itemId === '$late') {
              insertHeld!();
              await new Promise<void>((resolve) => (releaseInsert = resolve));
            }
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      const repo = new MongoAppServiceQueueRepository(heldQueue, database.collection('app_service_txns'), database.collection('app_service_delivered'), database.collection('counters'));
      const as = `as-late-${randomBytes(3).toString('hex')}`;
      const late = repo.enqueue(as, { itemId: '$late', kind: 'event', event: { id: '$late' } });
      await insertReached;
      expect(await repo.enqueue(as, { itemId: '$early', kind: 'event', event: { id: '$early' } })).toEqual({ inserted: true });
      const opened = await repo.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 });
      expect(opened?.events).toEqual([{ id: '$early' }]);
      releaseInsert!();
      expect(await late).toEqual({ inserted: true });
      await repo.ackTransaction(as, opened!.txnId);
      expect(await repo.pendingCount(as)).toBe(1);
      expect((await repo.openTransaction(as, { maxEvents: 10, maxEphemeral: 10 }))?.events).toEqual([{ id: '$late' }]);
    } finally {
      await client.close();
    }
  });
});
