// What the chat platform's admin paths leave behind: deactivated users, deleted (and possibly
// blocked) rooms, and rooms a local user forgot. chat-sync reads these on every request, so each is a
// lookup by key.
import type { JsonObject } from '@fedgate/protocol';

export interface DeactivatedUserRecord {
  userId: string;
  deactivatedTs: number;
  /** The profile was erased (asked for with `erase: true`, now or in a later call). */
  erased: boolean;
  /** The application service that asked. */
  appServiceId: string | null;
}

export interface RoomDeletionRecord {
  roomId: string;
  /** The ID the admin API answers with (`delete_id`); unique. */
  deleteId: string;
  deletedTs: number;
  appServiceId: string | null;
  /** Local joins (and invites of local users) are refused from now on. */
  blocked: boolean;
  /** The room's history is no longer served on the client-server side (the event DAG stays). */
  purged: boolean;
  /** What was done: kicked users, failures, aliases removed (the admin API's `shutdown_room` shape). */
  result: JsonObject;
}

export interface ForgottenRoomRecord {
  userId: string;
  roomId: string;
  /** The user's membership event when they forgot the room: a later membership ends the forgetting. */
  membershipEventId: string;
  forgottenTs: number;
}

export interface ChatLifecycleRepository {
  /**
   * Marks the user deactivated. The first call's time and service stay; `erased` only ever goes from
   * false to true. Returns the stored record and whether this call created it.
   */
  deactivate(record: DeactivatedUserRecord): Promise<{ created: boolean; record: DeactivatedUserRecord }>;
  getDeactivated(userId: string): Promise<DeactivatedUserRecord | undefined>;

  /** Stores the room's deletion; a later deletion of the same room replaces it. */
  recordRoomDeletion(record: RoomDeletionRecord): Promise<void>;
  getRoomDeletion(roomId: string): Promise<RoomDeletionRecord | undefined>;
  getRoomDeletionById(deleteId: string): Promise<RoomDeletionRecord | undefined>;

  /** Records (or replaces) that the user forgot the room. */
  forget(record: ForgottenRoomRecord): Promise<void>;
  getForgotten(userId: string, roomId: string): Promise<ForgottenRoomRecord | undefined>;
}
