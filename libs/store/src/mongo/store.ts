import type { Store } from '../ports/store';
import { SequentialCommitWriter } from '../shared/sequential-commit-writer';
import { SnapshotRepository } from '../shared/snapshots';
import { MongoAccountDataRepository } from './account-data';
import { MongoOpenIdTokenRepository } from './openid-tokens';
import { MongoPrivateReceiptRepository } from './private-receipts';
import { MongoAuditRepository } from './audit';
import { MongoChatLifecycleRepository } from './chat-lifecycle';
import { MongoRoomDirectoryRepository } from './room-directory';
import { MongoClientTransactionRepository } from './client-transactions';
import { MongoAliasRepository, MongoAppServiceQueueRepository, MongoLocalMembershipRepository, MongoProfileRepository } from './chat';
import { connectMongo, type MongoCollections, type MongoConnectOptions } from './database';
import { MongoEgressQueueRepository } from './egress-queue';
import { MongoEventRepository } from './events';
import { MongoDestinationRepository, MongoReceivedTransactionRepository, MongoServerKeyRepository } from './federation';
import { MongoAppServiceRepository, MongoMediaRepository } from './platform';
import { MongoLeaseRepository } from './leases';
import { MongoDeviceKeyRepository } from './device-keys';
import { MongoDeviceListRepository } from './device-lists';
import { MongoToDeviceRepository } from './to-device';
import { MongoPendingCommitRepository, MongoRoomFences } from './pending-commits';
import { MongoPartialStateRoomRepository } from './partial-state-rooms';
import { MongoRedactionRepository } from './redactions';
import { MongoRoomRepository } from './rooms';
import { MongoSnapshotRows } from './state';

export interface MongoStoreOptions extends MongoConnectOptions {
  /** Tests only: the collections the repositories use, given the real ones (e.g. `MongoWriteCrash.collections`). */
  wrapCollections?: (collections: MongoCollections) => MongoCollections;
}

/**
 * Connects to the database `db` at `url` (MongoDB or FerretDB) and creates the indexes. A watchdog replaces
 * the driver's client when it stops reaching a server that answers fresh connections (see replaceable-client).
 */
export async function openMongoStore(url: string, db: string, options: MongoStoreOptions = {}): Promise<Store> {
  const connection = await connectMongo(url, db, options);
  const { client, idLookupsOnly } = connection;
  const c = options.wrapCollections ? options.wrapCollections(connection.collections) : connection.collections;
  const fences = new MongoRoomFences(c.roomCommits);
  const events = new MongoEventRepository(c.events, idLookupsOnly, fences);
  const state = new SnapshotRepository(new MongoSnapshotRows(c.stateSnapshots, c.eventState, idLookupsOnly, fences));
  const rooms = new MongoRoomRepository(c.rooms, c.forwardExtremities, c.joinedServers, fences);
  const pendingCommits = new MongoPendingCommitRepository(c.roomCommits, c.pendingCommits, c.counters);
  return {
    events,
    state,
    rooms,
    receivedTransactions: new MongoReceivedTransactionRepository(c.receivedTransactions),
    destinations: new MongoDestinationRepository(c.destinations),
    egressQueue: new MongoEgressQueueRepository(c.egressQueue, c.egressTransactions, c.counters, new MongoDestinationRepository(c.destinations)),
    serverKeys: new MongoServerKeyRepository(c.ownKeys, c.remoteKeys),
    appServices: new MongoAppServiceRepository(c.appServices, c.appServicePositions),
    media: new MongoMediaRepository(c.media),
    audit: new MongoAuditRepository(c.audit),
    profiles: new MongoProfileRepository(c.profiles),
    aliases: new MongoAliasRepository(c.aliases),
    memberships: new MongoLocalMembershipRepository(c.localMemberships),
    appServiceQueue: new MongoAppServiceQueueRepository(c.appServiceQueue, c.appServiceTxns, c.appServiceDelivered, c.counters),
    chatLifecycle: new MongoChatLifecycleRepository(c.deactivatedUsers, c.roomDeletions, c.forgottenRooms),
    clientTransactions: new MongoClientTransactionRepository(c.clientTransactions),
    redactions: new MongoRedactionRepository(c.redactionClaims, c.events),
    leases: new MongoLeaseRepository(c.leases, c.counters),
    pendingCommits,
    commits: new SequentialCommitWriter({ pendingCommits, state, events, rooms }),
    partialStateRooms: new MongoPartialStateRoomRepository(c.partialStateRooms, fences),
    roomDirectory: new MongoRoomDirectoryRepository(c.roomDirectory),
    deviceKeys: new MongoDeviceKeyRepository(c.devices, c.oneTimeKeys, c.fallbackKeys, c.crossSigningKeys, c.counters, c.deviceListChanges, c.userSigningSignatures, c.remoteDeviceLists),
    deviceLists: new MongoDeviceListRepository(c.deviceListChanges, c.remoteDeviceLists, c.counters),
    toDevice: new MongoToDeviceRepository(c.toDeviceOutbox, c.toDeviceDelivered),
    accountData: new MongoAccountDataRepository(c.accountData),
    openIdTokens: new MongoOpenIdTokenRepository(c.openIdTokens),
    privateReceipts: new MongoPrivateReceiptRepository(c.privateReceipts),
    close: () => client.close(),
  };
}
