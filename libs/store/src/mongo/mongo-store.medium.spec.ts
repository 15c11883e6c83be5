import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { describeAccountDataContract } from '../testing/account-data-contract';
import { describeChatStoreContract } from '../testing/chat-contract';
import { describeLeaseContract } from '../testing/lease-contract';
import { describeDeviceKeyContract } from '../testing/device-keys-contract';
import { describeStoreContract } from '../testing/store-contract';
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
