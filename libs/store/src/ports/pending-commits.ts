// Commits of events under way. A commit is several writes (state refs, the event, forward extremities,
// current state, the room log entry); its record is written before the first of them and removed after
// the last, so a commit cut short by a crash or an outage is finished by the repair path from what the
// record holds, instead of leaving a room with an event half in it.

export interface PendingCommit {
  eventId: string;
  roomId: string;
  /** What finishing the commit needs (JSON: the event, its outcome, its snapshots, the client transaction). */
  payload: Record<string, unknown>;
  createdTs: number;
}

export interface PendingCommitRepository {
  /** Records the commit unless one is recorded for the event (the first record stays). */
  add(commit: PendingCommit): Promise<void>;
  get(eventId: string): Promise<PendingCommit | undefined>;
  /** Oldest first; every room's when `roomId` is not given. */
  list(roomId?: string): Promise<PendingCommit[]>;
  /** The commit is over (finished or abandoned). Idempotent. */
  remove(eventId: string): Promise<void>;
}
