// What chat-sync keeps for the client-server API: local users and their profiles, room aliases, the
// rooms local users are in, and each application service's durable push queue.
import type { JsonObject } from '@fedgate/protocol';

export interface ProfileRecord {
  /** A local user ID: the record exists once the user is registered. */
  userId: string;
  displayname: string | null;
  avatarUrl: string | null;
  /** The application service that registered the user, if one did. */
  appServiceId: string | null;
  createdTs: number;
}

export interface ProfileRepository {
  /** Registers the user with `profile`; an existing user is left as it is (`created: false`). */
  create(profile: ProfileRecord): Promise<{ created: boolean }>;
  get(userId: string): Promise<ProfileRecord | undefined>;
  /** Changes the given fields (null clears); undefined if the user is not registered. */
  update(userId: string, change: { displayname?: string | null; avatarUrl?: string | null }): Promise<ProfileRecord | undefined>;
}

export interface AliasRecord {
  /** `#localpart:server`. */
  alias: string;
  roomId: string;
  /** Servers to join through, as `query/directory` answers. */
  servers: string[];
  creator: string;
  createdTs: number;
}

export interface AliasRepository {
  /** Stores the alias unless it is taken; a taken alias is returned as `existing`. */
  create(record: AliasRecord): Promise<{ created: boolean; existing?: AliasRecord }>;
  get(alias: string): Promise<AliasRecord | undefined>;
  /** False if there was no such alias. */
  remove(alias: string): Promise<boolean>;
  forRoom(roomId: string): Promise<AliasRecord[]>;
}

export interface LocalMembershipRepository {
  /** Records a local user's membership in a room as of `eventId` (last write wins). */
  set(userId: string, roomId: string, membership: string, eventId: string): Promise<void>;
  /** Rooms in which the user's latest recorded membership is `membership`. */
  roomsOf(userId: string, membership: string): Promise<string[]>;
}

export interface AppServiceQueueItem {
  /** Dedupe key within the service's queue (e.g. the event ID): enqueuing it again changes nothing. */
  itemId: string;
  /** `to_device`: a to-device message for one of the service's users' devices (MSC2409). */
  kind: 'event' | 'ephemeral' | 'to_device' | 'device_list';
  event: JsonObject;
}

export interface AppServiceTransaction {
  txnId: string;
  events: JsonObject[];
  ephemeral: JsonObject[];
  /** To-device messages, present only when there are some (they count against the ephemeral limit). */
  toDevice?: JsonObject[];
  /** MSC3202: users whose device lists changed, or who no longer share a room with the service's users (present only when some). */
  deviceLists?: { changed: string[]; left: string[] };
  /**
   * `events` as JSON text, when the store has it as stored (the embedded store's queue rows): the push sends it as it
   * is instead of serialising the events again (issue 19). Not enumerable; set once, with `events` never changed after.
   */
  readonly eventsJson?: string;
}

/**
 * One durable push queue per application service. A transaction, once opened, is pinned (same ID,
 * same contents) until acknowledged, across restarts; transaction IDs increase. An item is delivered
 * at most once: its ID is remembered after its transaction is acked (until pruned), so the same item
 * handed over again (a bus redelivery after the push went out) is not queued again.
 */
export interface AppServiceQueueRepository {
  /** Not inserted when the item is queued already or was delivered (and not pruned yet: then `delivered`). */
  enqueue(appServiceId: string, item: AppServiceQueueItem): Promise<{ inserted: boolean; delivered?: true }>;
  /** `enqueue` of each item in order, answered per item; the embedded store writes them in one transaction (issue 19). */
  enqueueMany(appServiceId: string, items: readonly AppServiceQueueItem[]): Promise<Array<{ inserted: boolean; delivered?: true }>>;
  /** The open transaction, or a new one from the head of the queue within the limits; null when empty. */
  openTransaction(appServiceId: string, limits: { maxEvents: number; maxEphemeral: number }): Promise<AppServiceTransaction | null>;
  /** Remembers the transaction's items as delivered, drops them and closes it; a stale or unknown txnId changes nothing. */
  ackTransaction(appServiceId: string, txnId: string): Promise<void>;
  pendingCount(appServiceId: string): Promise<number>;
  /** Forgets items delivered before `deliveredBefore` (ms); answers how many. */
  pruneDelivered(deliveredBefore: number): Promise<number>;
}
