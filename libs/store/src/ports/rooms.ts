// Rooms the gateway takes part in: version, creator, current state, forward extremities and the
// servers joined to each room (who egress sends to).

import type { RoomWriteFence } from './pending-commits';

export interface RoomRecord {
  roomId: string;
  roomVersion: string;
  creator: string;
  createdTs: number;
  /** Snapshot of the state after the forward extremities (resolved), for soft-fail checks; null until known. */
  currentStateId: string | null;
}

export interface RoomRepository {
  /** Creates the room record if absent; an existing record is left as it is. Returns the stored record. */
  ensure(room: { roomId: string; roomVersion: string; creator: string; createdTs: number }): Promise<RoomRecord>;
  get(roomId: string): Promise<RoomRecord | undefined>;
  setCurrentState(roomId: string, snapshotId: string, fence?: RoomWriteFence): Promise<void>;

  getForwardExtremities(roomId: string): Promise<string[]>;
  /**
   * Adds `add` and removes `remove` (typically: add the new event, remove its prev events).
   * Additions are written before removals, so a room never shows no extremity; repeating it is harmless.
   */
  updateForwardExtremities(roomId: string, change: { add: string[]; remove: string[] }, fence?: RoomWriteFence): Promise<void>;

  getJoinedServers(roomId: string): Promise<string[]>;
  /** Replaces the joined servers of a room with `servers`. */
  setJoinedServers(roomId: string, servers: string[], fence?: RoomWriteFence): Promise<void>;
  /** Adds and removes joined servers (the delta the state-resolver publishes). */
  updateJoinedServers(roomId: string, change: { add: string[]; remove: string[] }): Promise<void>;
  /** Rooms `server` is joined to (egress catch-up after an outage). */
  roomsOfServer(server: string): Promise<string[]>;
}
