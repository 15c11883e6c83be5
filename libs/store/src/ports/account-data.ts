// Account data of local users (client-server "Client Config"): global (`roomId` null) and per room,
// one JSON object per (user, room, type). chat-sync writes and reads it for application-service users.
import type { JsonObject } from '@fedgate/protocol';

export interface AccountDataEntry {
  userId: string;
  /** Null for global account data. */
  roomId: string | null;
  type: string;
  content: JsonObject;
  updatedTs: number;
}

export interface AccountDataRepository {
  /** Sets (replaces) one entry. */
  put(entry: AccountDataEntry): Promise<void>;
  get(userId: string, roomId: string | null, type: string): Promise<AccountDataEntry | undefined>;
  /** A user's entries, global then per room, in (room, type) order. */
  listForUser(userId: string): Promise<AccountDataEntry[]>;
  /** How many entries the user has (global and per room), those of `excludeTypes` left out, to bound what one user may keep. */
  countForUser(userId: string, excludeTypes?: readonly string[]): Promise<number>;
  /** Removes every entry of the user (erasure); returns how many there were. */
  deleteForUser(userId: string): Promise<number>;
}
