// The store writes of one event's commit (state-resolver's RoomTimeline), handed over together so a store that
// can make them one unit does: the embedded SQLite store writes them in one transaction (issue 19: they were six
// commits per inbound PDU). A store that cannot (MongoDB) writes them one after the other in this order; the
// pending commit, written first, lets the repair path finish a commit cut short between them.
import type { EventRecord } from './events';
import type { CommitFence, PendingCommit } from './pending-commits';
import type { EventStateRefs } from './state';

export interface EventCommitWrites {
  /** The commit's journal record, when not written yet (refused with CommitFencedError, nothing written, if fenced out). */
  pending?: { commit: PendingCommit; fence?: CommitFence };
  /** The state before and after the event: written before the event can become a forward extremity. */
  stateRefs: EventStateRefs;
  /** Appended; an event already held (an outlier, or a commit finished again) gets this outcome instead. */
  event: EventRecord;
  /** A room's create event: its room record. */
  room?: { roomId: string; roomVersion: string; creator: string; createdTs: number };
  forwardExtremities?: { add: string[]; remove: string[] };
  currentStateId?: string;
}

export interface CommitWriter {
  /** The writes, in the order of `EventCommitWrites`' fields. `inserted`: the event was not held before. */
  write(writes: EventCommitWrites): Promise<{ inserted: boolean }>;
  /**
   * Several commits, each as `write` makes it, in order (issue 19: a run of inbound PDUs). The embedded store makes them
   * one transaction (all or, a crash or a fence refusing one, none); a store without transactions one after the other.
   */
  writeAll(writes: readonly EventCommitWrites[]): Promise<Array<{ inserted: boolean }>>;
}
