import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeAccountDataContract } from '../testing/account-data-contract';
import { describeChatStoreContract } from '../testing/chat-contract';
import { describeLeaseContract } from '../testing/lease-contract';
import { describeDeviceKeyContract } from '../testing/device-keys-contract';
import { describeStoreContract } from '../testing/store-contract';
import { openSqliteStore } from './store';

const dir = mkdtempSync(path.join(os.tmpdir(), 'fedgate-store-'));
const file = path.join(dir, 'fedgate.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreContract('sqlite', async () => openSqliteStore(file), { reopen: async () => openSqliteStore(file) });
describeChatStoreContract('sqlite', async () => openSqliteStore(file));
describeLeaseContract('sqlite', async () => openSqliteStore(file));
describeDeviceKeyContract('sqlite', async () => openSqliteStore(file));
describeAccountDataContract('sqlite', async () => openSqliteStore(file));
