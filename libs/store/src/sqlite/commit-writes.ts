import type { CommitWriter, EventCommitWrites } from '../ports/commit-writes';
import type { SqliteDatabase } from './database';
import type { SqliteEventRepository } from './events';
import type { SqlitePendingCommitRepository } from './pending-commits';
import type { SqliteRoomRepository } from './rooms';
import type { SqliteSnapshotRows } from './state';

/** One SQLite transaction for the whole commit: all of it or (a crash, a fence) none. */
export class SqliteCommitWriter implements CommitWriter {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly repos: { pendingCommits: SqlitePendingCommitRepository; stateRows: SqliteSnapshotRows; events: SqliteEventRepository; rooms: SqliteRoomRepository },
  ) {}

  async write(writes: EventCommitWrites): Promise<{ inserted: boolean }> {
    return { inserted: this.writeNow(writes) };
  }

  async writeAll(writes: readonly EventCommitWrites[]): Promise<Array<{ inserted: boolean }>> {
    return this.db.transaction(() => writes.map((w) => ({ inserted: this.writeNow(w) })));
  }

  private writeNow(writes: EventCommitWrites): boolean {
    const { pendingCommits, stateRows, events, rooms } = this.repos;
    const { event } = writes;
    return this.db.transaction(() => {
      stateRows.putEventRefsNow(event.eventId, writes.stateRefs);
      const fresh = events.insert(event);
      // The journal record goes after the event row (one transaction: a fence refusing it undoes both), so that a
      // record of a PDU just written as the row refers to the row instead of holding a second copy (issue 19).
      if (writes.pending) pendingCommits.addNow(writes.pending.commit, writes.pending.fence, fresh && writes.pending.commit.payload.pdu === event.pdu);
      if (!fresh) events.setOutcomeNow(event.eventId, { status: event.status, reason: event.reason, outlier: event.outlier });
      if (writes.room) rooms.ensureNow(writes.room);
      if (writes.forwardExtremities) rooms.updateForwardExtremitiesNow(event.roomId, writes.forwardExtremities);
      if (writes.currentStateId !== undefined) rooms.setCurrentStateNow(event.roomId, writes.currentStateId);
      return fresh;
    });
  }
}
