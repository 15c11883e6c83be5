// The MongoDB adapter's connection and collections. Written for MongoDB and FerretDB alike: no
// multi-document transactions (writes are idempotent: unique keys, upserts, $setOnInsert), no change
// streams (the bus is the change feed), no aggregation-pipeline updates. Values whose keys come from
// the outside world (PDUs, JSON responses) are stored as JSON strings: Matrix content keys hold dots
// and dollars, and a string keeps the exact JSON whatever the server makes of such keys.
import { MongoServerError, type Collection, type Document, type IndexDescription } from 'mongodb';
import { ReplaceableMongoClient, type MongoClientReplacement, type MongoWatchdogOptions } from './replaceable-client';

export interface MongoCollections {
  events: Collection<Document>;
  stateSnapshots: Collection<Document>;
  eventState: Collection<Document>;
  rooms: Collection<Document>;
  forwardExtremities: Collection<Document>;
  joinedServers: Collection<Document>;
  receivedTransactions: Collection<Document>;
  clientTransactions: Collection<Document>;
  redactionClaims: Collection<Document>;
  pendingCommits: Collection<Document>;
  partialStateRooms: Collection<Document>;
  roomCommits: Collection<Document>;
  destinations: Collection<Document>;
  egressQueue: Collection<Document>;
  egressTransactions: Collection<Document>;
  counters: Collection<Document>;
  profiles: Collection<Document>;
  aliases: Collection<Document>;
  localMemberships: Collection<Document>;
  appServiceQueue: Collection<Document>;
  appServiceTxns: Collection<Document>;
  appServiceDelivered: Collection<Document>;
  deactivatedUsers: Collection<Document>;
  roomDeletions: Collection<Document>;
  forgottenRooms: Collection<Document>;
  roomDirectory: Collection<Document>;
  ownKeys: Collection<Document>;
  remoteKeys: Collection<Document>;
  appServices: Collection<Document>;
  appServicePositions: Collection<Document>;
  media: Collection<Document>;
  audit: Collection<Document>;
  leases: Collection<Document>;
  devices: Collection<Document>;
  oneTimeKeys: Collection<Document>;
  fallbackKeys: Collection<Document>;
  crossSigningKeys: Collection<Document>;
  deviceListChanges: Collection<Document>;
  remoteDeviceLists: Collection<Document>;
  toDeviceOutbox: Collection<Document>;
  toDeviceDelivered: Collection<Document>;
  userSigningSignatures: Collection<Document>;
  accountData: Collection<Document>;
  openIdTokens: Collection<Document>;
  privateReceipts: Collection<Document>;
}

const COLLECTIONS: Record<keyof MongoCollections, { name: string; indexes: IndexDescription[] }> = {
  events: {
    name: 'events',
    indexes: [
      { key: { roomId: 1, depth: -1 }, name: 'room_depth' },
      { key: { roomId: 1, status: 1, depth: -1 }, name: 'room_status_depth' },
    ],
  },
  stateSnapshots: { name: 'state_snapshots', indexes: [] },
  eventState: { name: 'event_state', indexes: [] },
  rooms: { name: 'rooms', indexes: [] },
  forwardExtremities: { name: 'forward_extremities', indexes: [] },
  joinedServers: { name: 'joined_servers', indexes: [{ key: { servers: 1 }, name: 'servers' }] },
  receivedTransactions: { name: 'received_transactions', indexes: [{ key: { receivedTs: 1 }, name: 'received_ts' }] },
  clientTransactions: { name: 'client_transactions', indexes: [] },
  leases: { name: 'leases', indexes: [] },
  devices: { name: 'devices', indexes: [{ key: { userId: 1 }, name: 'user' }, { key: { 'pending.since': 1 }, name: 'pending', sparse: true }] },
  oneTimeKeys: { name: 'one_time_keys', indexes: [{ key: { userId: 1, deviceId: 1, algorithm: 1, keyId: 1 }, name: 'device_algorithm_key' }] },
  fallbackKeys: { name: 'fallback_keys', indexes: [{ key: { userId: 1, deviceId: 1 }, name: 'device' }] },
  crossSigningKeys: { name: 'cross_signing_keys', indexes: [{ key: { userId: 1 }, name: 'user' }, { key: { 'pending.since': 1 }, name: 'pending', sparse: true }] },
  deviceListChanges: { name: 'device_list_changes', indexes: [{ key: { announced: 1, _id: 1 }, name: 'announced' }] },
  remoteDeviceLists: { name: 'remote_device_lists', indexes: [{ key: { stale: 1, updatedTs: 1 }, name: 'stale' }, { key: { pendingLog: 1 }, name: 'pending_log', sparse: true }] },
  toDeviceOutbox: { name: 'to_device_outbox', indexes: [{ key: { published: 1, createdTs: 1 }, name: 'unpublished' }] },
  toDeviceDelivered: { name: 'to_device_delivered', indexes: [{ key: { ts: 1 }, name: 'ts' }] },
  userSigningSignatures: { name: 'user_signing_signatures', indexes: [{ key: { signer: 1, target: 1 }, name: 'signer_target' }] },
  accountData: { name: 'account_data', indexes: [{ key: { userId: 1 }, name: 'user' }] },
  openIdTokens: { name: 'openid_tokens', indexes: [{ key: { expiresTs: 1 }, name: 'expires' }] },
  privateReceipts: { name: 'private_receipts', indexes: [{ key: { userId: 1, roomId: 1 }, name: 'user_room' }] },
  redactionClaims: { name: 'redaction_claims', indexes: [{ key: { 'claims.roomId': 1 }, name: 'claim_room' }] },
  pendingCommits: { name: 'pending_commits', indexes: [] },
  partialStateRooms: { name: 'partial_state_rooms', indexes: [] },
  roomCommits: {
    name: 'room_commits',
    indexes: [
      { key: { n: 1 }, name: 'pending' },
      { key: { partition: 1 }, name: 'partition' },
    ],
  },
  destinations: { name: 'destinations', indexes: [{ key: { retryAt: 1 }, name: 'retry_at' }] },
  egressQueue: { name: 'egress_queue', indexes: [{ key: { destination: 1, position: 1 }, name: 'destination_position' }] },
  egressTransactions: { name: 'egress_transactions', indexes: [{ key: { destination: 1 }, name: 'destination' }] },
  counters: { name: 'counters', indexes: [] },
  profiles: { name: 'profiles', indexes: [] },
  aliases: { name: 'aliases', indexes: [{ key: { roomId: 1 }, name: 'room' }] },
  localMemberships: { name: 'local_memberships', indexes: [{ key: { userId: 1, membership: 1 }, name: 'user_membership' }] },
  appServiceQueue: { name: 'app_service_queue', indexes: [{ key: { appServiceId: 1, seq: 1 }, name: 'service_seq' }] },
  appServiceTxns: { name: 'app_service_txns', indexes: [] },
  appServiceDelivered: { name: 'app_service_delivered', indexes: [{ key: { deliveredTs: 1 }, name: 'delivered_ts' }] },
  deactivatedUsers: { name: 'deactivated_users', indexes: [] },
  roomDeletions: { name: 'room_deletions', indexes: [{ key: { deleteId: 1 }, name: 'delete_id', unique: true }] },
  forgottenRooms: { name: 'forgotten_rooms', indexes: [] },
  roomDirectory: { name: 'room_directory', indexes: [{ key: { visibility: 1, _id: 1 }, name: 'visibility_room' }] },
  ownKeys: { name: 'own_keys', indexes: [] },
  remoteKeys: { name: 'remote_keys', indexes: [{ key: { serverName: 1 }, name: 'server' }] },
  appServices: { name: 'app_services', indexes: [] },
  appServicePositions: { name: 'app_service_positions', indexes: [] },
  media: { name: 'media', indexes: [] },
  audit: {
    name: 'audit',
    indexes: [
      { key: { ts: -1 }, name: 'ts' },
      { key: { origin: 1, ts: -1 }, name: 'origin_ts' },
      { key: { destination: 1, ts: -1 }, name: 'destination_ts' },
      { key: { outcome: 1, ts: -1 }, name: 'outcome_ts' },
      { key: { reason: 1, ts: -1 }, name: 'reason_ts' },
      { key: { roomId: 1, ts: -1 }, name: 'room_ts' },
      { key: { rule: 1, ts: -1 }, name: 'rule_ts' },
      { key: { server: 1, ts: -1 }, name: 'server_ts' },
    ],
  },
};

export interface MongoConnection {
  client: ReplaceableMongoClient;
  collections: MongoCollections;
  /** True on FerretDB, whose SQLite backend answers only `_id` equality without scanning the collection. */
  idLookupsOnly: boolean;
}

export interface MongoConnectOptions {
  watchdog?: MongoWatchdogOptions;
  /** Told when the watchdog replaced a client that no longer reached a server answering fresh connections. */
  onClientReplaced?: (replacement: MongoClientReplacement) => void;
}

export async function connectMongo(url: string, dbName: string, options: MongoConnectOptions = {}): Promise<MongoConnection> {
  const client = await ReplaceableMongoClient.connect(url, dbName, options.watchdog, options.onClientReplaced);
  try {
    const buildInfo = await client.db.admin().command({ buildInfo: 1 });
    const collections = {} as MongoCollections;
    for (const [key, spec] of Object.entries(COLLECTIONS) as Array<[keyof MongoCollections, (typeof COLLECTIONS)[keyof MongoCollections]]>) {
      collections[key] = client.collection(spec.name);
      // One index per command: FerretDB 1.24 drops the connection (a server-side panic) on a
      // createIndexes naming several indexes that already exist, which is every start after the first.
      for (const index of spec.indexes) await collections[key].createIndexes([index]);
    }
    return { client, collections, idLookupsOnly: 'ferretdbVersion' in buildInfo };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/**
 * The documents with the given `_id`s. `$in` on MongoDB; on FerretDB one `_id` lookup each, in
 * parallel, because its SQLite backend scans the whole collection for `$in` (about 25x slower at
 * a thousand documents).
 */
export async function findByIds(collection: Collection<Document>, ids: string[], idLookupsOnly: boolean, projection?: Document): Promise<Document[]> {
  if (ids.length === 0) return [];
  if (ids.length > 1 && !idLookupsOnly) return collection.find({ _id: { $in: ids as never[] } }, { projection }).toArray();
  const found = await Promise.all(ids.map((id) => collection.findOne({ _id: id as never }, { projection })));
  return found.filter((d) => d !== null) as Document[];
}

export function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === 11000;
}

/** A string key for a compound natural key (unambiguous for any strings). */
export const compoundId = (...parts: string[]): string => JSON.stringify(parts);

/** The next value of a named counter (1, 2, …): one atomic single-document update, on MongoDB and FerretDB alike. */
export async function nextCounterValue(counters: Collection<Document>, name: string): Promise<number> {
  const doc = await counters.findOneAndUpdate({ _id: name as never }, { $inc: { value: 1 } }, { upsert: true, returnDocument: 'after' });
  return doc?.value as number;
}
