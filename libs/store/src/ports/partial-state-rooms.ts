// Rooms joined with partial state (send_join with omit_members): the room is in use while its full state
// is fetched in the background. The record is written before the join is committed and removed only after
// the full state is in, so a restart in between resumes the resync.

import type { RoomWriteFence } from './pending-commits';

export interface PartialStateRoom {
  roomId: string;
  /** Our join: the state before it is the one that lacks the members. */
  joinEventId: string;
  /** send_join's servers_in_room: where our events go until the members are known, and whom the resync asks. */
  serversInRoom: string[];
  /** The server that answered send_join (asked first). */
  resident: string;
  startedTs: number;
}

export interface PartialStateRoomRepository {
  /** Records (or replaces) the room's partial state. */
  begin(room: PartialStateRoom): Promise<void>;
  get(roomId: string): Promise<PartialStateRoom | undefined>;
  /** Every room still partial, oldest first. */
  list(): Promise<PartialStateRoom[]>;
  /** The full state is in. Idempotent. */
  finish(roomId: string, fence?: RoomWriteFence): Promise<void>;
}
