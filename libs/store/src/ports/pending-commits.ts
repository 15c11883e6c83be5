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

/**
 * The fencing token of a commit: the epoch of the partition lease its maker held. Each room keeps the highest
 * epoch a commit (or a new owner's takeover, `raiseFence`) brought; a commit with a lower one is refused in
 * the same write that would record it, so a replica that lost its lease (paused between its ownership check
 * and the write) cannot commit after its successor took the room over.
 */
export interface CommitFence {
  partition: number;
  epoch: number;
}

/** A commit refused by its room's fence: the room has seen a later owner. Nothing of the commit is recorded. */
export class CommitFencedError extends Error {
  constructor(
    readonly roomId: string,
    readonly eventId: string,
    /** The epoch the commit was made under; undefined when its maker held no lease on the partition at all. */
    readonly epoch: number | undefined,
    readonly roomEpoch: number | undefined,
  ) {
    super(
      epoch === undefined
        ? `commit of ${eventId} in ${roomId} refused: this replica does not hold the room's partition (lost or handed over)`
        : `commit of ${eventId} in ${roomId} refused: made under lease epoch ${epoch}, the room has seen epoch ${roomEpoch} (its partition has a newer owner)`,
    );
    this.name = 'CommitFencedError';
  }
}

/**
 * The fence a write of room data outside a commit carries (a partial-state resync's: outcomes, state refs,
 * extremities, current state, joined servers, the partial-state record's removal): the room and the lease
 * holding the write is made under. Checked like a commit's fence: refused (RoomWriteFencedError, nothing
 * written) when the room has seen a higher epoch; else the room's fence is brought up to this epoch.
 */
export interface RoomWriteFence extends CommitFence {
  roomId: string;
}

/** A write of room data refused by its room's fence (`write` names it): the room has seen a later owner. */
export class RoomWriteFencedError extends CommitFencedError {
  constructor(roomId: string, readonly write: string, epoch: number, roomEpoch: number) {
    super(roomId, `write:${write}`, epoch, roomEpoch);
    this.message = `${write} in ${roomId} refused: made under lease epoch ${epoch}, the room has seen epoch ${roomEpoch} (its partition has a newer owner)`;
    this.name = 'RoomWriteFencedError';
  }
}

export interface PendingCommitRepository {
  /**
   * Records the commit unless one is recorded for the event (the first record stays). With a fence, the
   * record is written only if the room has seen no higher epoch (one atomic write); else CommitFencedError.
   */
  add(commit: PendingCommit, fence?: CommitFence): Promise<void>;
  /** A new owner of a partition raises the fence of every room of it that commits were fenced in: commits under older epochs are refused from now on. */
  raiseFence(fence: CommitFence): Promise<void>;
  get(eventId: string): Promise<PendingCommit | undefined>;
  /** Oldest first; every room's when `roomId` is not given. */
  list(roomId?: string): Promise<PendingCommit[]>;
  /** The commit is over (finished or abandoned). Idempotent. `roomId`, when known, finds it without a scan. */
  remove(eventId: string, roomId?: string): Promise<void>;
  /** Several commits of one room are over (a run's room log entries went out together): one write where the store can. Idempotent. */
  removeAll(roomId: string, eventIds: readonly string[]): Promise<void>;
}
