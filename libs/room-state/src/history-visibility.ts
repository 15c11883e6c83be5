// Who may see an event, by `m.room.history_visibility` and the viewer's membership in the room state at the
// event (client-server "Room History Visibility", server behaviour). Pure: callers look the facts up, this
// decides. The same rule serves a user (one membership) and a server (the memberships of all its users).

export type HistoryVisibility = 'world_readable' | 'shared' | 'invited' | 'joined';

const KNOWN: readonly string[] = ['world_readable', 'shared', 'invited', 'joined'];

/** The visibility a `m.room.history_visibility` content stands for: absent or not understood is `shared`. */
export function historyVisibilityOf(content: unknown): HistoryVisibility {
  const value = (content as { history_visibility?: unknown } | undefined)?.history_visibility;
  return typeof value === 'string' && KNOWN.includes(value) ? (value as HistoryVisibility) : 'shared';
}

/** The room state at one side of an event, reduced to what visibility needs. */
export interface VisibilityState {
  visibility: HistoryVisibility;
  /** The viewer's membership values in this state: one for a user, one per user of the server for a server. */
  memberships: readonly string[];
}

export interface VisibilityFacts {
  /** State before the event. */
  before: VisibilityState;
  /**
   * State after the event. It differs from `before` only for a history visibility change or a membership of the
   * viewer, which the spec lets the viewer see when either side allows it.
   */
  after: VisibilityState;
  /**
   * The viewer is in the room now (a joined user; a server with a joined user). Stands for "joined at some point
   * after the event" under `shared`.
   */
  inRoomNow: boolean;
}

function allowedBy(state: VisibilityState, inRoomNow: boolean): boolean {
  if (state.visibility === 'world_readable') return true;
  if (state.memberships.includes('join')) return true;
  if (state.visibility === 'shared') return inRoomNow;
  if (state.visibility === 'invited') return state.memberships.includes('invite');
  return false;
}

/** Whether the viewer may see the event (else it is served redacted or left out, as the endpoint says). */
export function mayViewEvent(facts: VisibilityFacts): boolean {
  return allowedBy(facts.before, facts.inRoomNow) || allowedBy(facts.after, facts.inRoomNow);
}
