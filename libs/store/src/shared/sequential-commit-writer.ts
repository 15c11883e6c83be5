import type { CommitWriter, EventCommitWrites } from '../ports/commit-writes';
import type { EventRepository } from '../ports/events';
import type { PendingCommitRepository } from '../ports/pending-commits';
import type { RoomRepository } from '../ports/rooms';
import type { StateSnapshotRepository } from '../ports/state';

/** A store without transactions across its repositories: the writes one after the other, each idempotent. */
export class SequentialCommitWriter implements CommitWriter {
  constructor(private readonly repos: { pendingCommits: PendingCommitRepository; state: StateSnapshotRepository; events: EventRepository; rooms: RoomRepository }) {}

  async writeAll(writes: readonly EventCommitWrites[]): Promise<Array<{ inserted: boolean }>> {
    const results: Array<{ inserted: boolean }> = [];
    for (const w of writes) results.push(await this.write(w));
    return results;
  }

  async write(writes: EventCommitWrites): Promise<{ inserted: boolean }> {
    const { pendingCommits, state, events, rooms } = this.repos;
    const { event } = writes;
    if (writes.pending) await pendingCommits.add(writes.pending.commit, writes.pending.fence);
    await state.setForEvent(event.eventId, writes.stateRefs);
    const { inserted } = await events.append(event);
    if (!inserted) await events.setOutcome(event.eventId, { status: event.status, reason: event.reason, outlier: event.outlier });
    if (writes.room) await rooms.ensure(writes.room);
    if (writes.forwardExtremities) await rooms.updateForwardExtremities(event.roomId, writes.forwardExtremities);
    if (writes.currentStateId !== undefined) await rooms.setCurrentState(event.roomId, writes.currentStateId);
    return { inserted };
  }
}
