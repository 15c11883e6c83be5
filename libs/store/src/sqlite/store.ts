import type { DatabaseSync } from 'node:sqlite';
import type { Store } from '../ports/store';
import { SnapshotRepository } from '../shared/snapshots';
import { SqliteAccountDataRepository } from './account-data';
import { SqliteOpenIdTokenRepository } from './openid-tokens';
import { SqlitePrivateReceiptRepository } from './private-receipts';
import { SqliteAuditRepository } from './audit';
import { SqliteChatLifecycleRepository } from './chat-lifecycle';
import { SqliteClientTransactionRepository } from './client-transactions';
import { SqliteAliasRepository, SqliteAppServiceQueueRepository, SqliteLocalMembershipRepository, SqliteProfileRepository, ensureChatSchema } from './chat';
import { SqliteCommitWriter } from './commit-writes';
import { SqliteDatabase } from './database';
import { SqliteEgressQueueRepository } from './egress-queue';
import { SqliteEventRepository } from './events';
import { SqliteDestinationRepository, SqliteReceivedTransactionRepository, SqliteServerKeyRepository } from './federation';
import { SqliteAppServiceRepository, SqliteMediaRepository } from './platform';
import { SqliteLeaseRepository } from './leases';
import { SqliteDeviceKeyRepository } from './device-keys';
import { SqliteDeviceListRepository } from './device-lists';
import { SqliteToDeviceRepository } from './to-device';
import { SqlitePendingCommitRepository } from './pending-commits';
import { SqlitePartialStateRoomRepository } from './partial-state-rooms';
import { SqliteRedactionRepository } from './redactions';
import { SqliteRoomDirectoryRepository } from './room-directory';
import { SqliteRoomRepository } from './rooms';
import { SqliteSnapshotRows } from './state';

/** The connection of each embedded store, so the embedded bus in the same process can share it (issue 19). */
const connections = new WeakMap<Store, DatabaseSync>();

/** The SQLite connection of an embedded store (undefined for any other store). */
export function sqliteConnectionOf(store: Store): DatabaseSync | undefined {
  return connections.get(store);
}

/** Opens (creating when missing) the embedded store in the SQLite file at `path`. */
export function openSqliteStore(path: string): Store {
  const db = new SqliteDatabase(path);
  ensureChatSchema(db);
  const events = new SqliteEventRepository(db);
  const stateRows = new SqliteSnapshotRows(db);
  const rooms = new SqliteRoomRepository(db);
  const pendingCommits = new SqlitePendingCommitRepository(db);
  const store: Store = {
    events,
    state: new SnapshotRepository(stateRows),
    rooms,
    receivedTransactions: new SqliteReceivedTransactionRepository(db),
    destinations: new SqliteDestinationRepository(db),
    egressQueue: new SqliteEgressQueueRepository(db),
    serverKeys: new SqliteServerKeyRepository(db),
    appServices: new SqliteAppServiceRepository(db),
    media: new SqliteMediaRepository(db),
    audit: new SqliteAuditRepository(db),
    profiles: new SqliteProfileRepository(db),
    aliases: new SqliteAliasRepository(db),
    memberships: new SqliteLocalMembershipRepository(db),
    appServiceQueue: new SqliteAppServiceQueueRepository(db),
    chatLifecycle: new SqliteChatLifecycleRepository(db),
    clientTransactions: new SqliteClientTransactionRepository(db),
    redactions: new SqliteRedactionRepository(db),
    leases: new SqliteLeaseRepository(db),
    pendingCommits,
    commits: new SqliteCommitWriter(db, { pendingCommits, stateRows, events, rooms }),
    partialStateRooms: new SqlitePartialStateRoomRepository(db),
    roomDirectory: new SqliteRoomDirectoryRepository(db),
    deviceKeys: new SqliteDeviceKeyRepository(db),
    deviceLists: new SqliteDeviceListRepository(db),
    toDevice: new SqliteToDeviceRepository(db),
    accountData: new SqliteAccountDataRepository(db),
    openIdTokens: new SqliteOpenIdTokenRepository(db),
    privateReceipts: new SqlitePrivateReceiptRepository(db),
    close: async () => db.close(),
  };
  connections.set(store, db.db);
  return store;
}
