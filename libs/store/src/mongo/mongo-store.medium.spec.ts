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
describeAccountDataContract('mongo', () => openMongoStore(url, db));
