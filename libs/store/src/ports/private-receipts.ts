// Private read receipts (`m.read.private`) of local users: one per (user, room, thread), the main timeline's thread
// being null. chat-sync keeps them for their owner only; they never leave this server.

export interface PrivateReceipt {
  userId: string;
  roomId: string;
  /** Null for the main timeline (an unthreaded or `main` receipt). */
  threadId: string | null;
  eventId: string;
  ts: number;
}

export interface PrivateReceiptRepository {
  /** Sets (replaces) the user's receipt in the room's thread. */
  put(receipt: PrivateReceipt): Promise<void>;
  /** The user's receipts in one room, main timeline first, then by thread ID. */
  forRoom(userId: string, roomId: string): Promise<PrivateReceipt[]>;
  /** Removes every receipt of the user (erasure); returns how many there were. */
  deleteForUser(userId: string): Promise<number>;
}
