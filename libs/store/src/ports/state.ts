// State snapshots: the room state at an event, as a projection of the DAG that can be rebuilt.
// A snapshot is stored as a base snapshot plus a delta, so consecutive events share almost all of
// their state; the chain is cut (a full snapshot written) when it grows long. Snapshot IDs are
// content-addressed (hash of room, base and delta), so storing the same derivation twice is harmless.

import type { RoomWriteFence } from './pending-commits';

/** Room state: state tuple key (see `stateTupleKey`) → event ID. */
export type StateMap = Map<string, string>;

export interface StateEntry {
  type: string;
  stateKey: string;
  /** null removes the tuple (only meaningful in a delta). */
  eventId: string | null;
}

/** The key of a (type, state_key) tuple in a `StateMap`. Unambiguous for any strings. */
export function stateTupleKey(type: string, stateKey: string): string {
  return JSON.stringify([type, stateKey]);
}

export function parseStateTupleKey(key: string): { type: string; stateKey: string } {
  const [type, stateKey] = JSON.parse(key) as [string, string];
  return { type, stateKey };
}

/** The snapshots for one event: the state before it (what /state_ids serves) and after it. */
export interface EventStateRefs {
  before: string;
  after: string;
}

export interface StateSnapshotRepository {
  /** Stores `base` with `delta` applied (base null: the delta is the whole state). Returns the new snapshot ID. */
  derive(roomId: string, baseId: string | null, delta: StateEntry[]): Promise<string>;
  /**
   * Stores a whole state, as a delta against `baseId` when given (the usual case after state
   * resolution: the resolved state differs little from one of the prev events' states).
   */
  save(roomId: string, state: StateMap, baseId?: string | null): Promise<string>;
  /** The full state of a snapshot, or undefined if no such snapshot. */
  load(snapshotId: string): Promise<StateMap | undefined>;
  /** Records the snapshots before and after an event. Idempotent. */
  setForEvent(eventId: string, refs: EventStateRefs, fence?: RoomWriteFence): Promise<void>;
  getForEvent(eventId: string): Promise<EventStateRefs | undefined>;
  /** State after an event (undefined if not recorded). */
  stateAfterEvent(eventId: string): Promise<StateMap | undefined>;
  /** State before an event: the state_ids of the federation API. */
  stateBeforeEvent(eventId: string): Promise<StateMap | undefined>;
}
