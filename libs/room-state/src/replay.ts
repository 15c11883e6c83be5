// Replays a room from its events: state before each event from its prev events, each event authorized, final state resolved.
import { isSupportedRoomVersion, roomVersionRules, type RoomVersionRules } from '@fedgate/protocol';
import { authStateFromMap, authorizeByAuthEvents, authorizeEvent, roomOfEvent, type AuthPorts, type AuthRejection } from './authorize';
import { computeDepths, forwardExtremities, topologicalOrder } from './dag';
import { InvalidEventError, isStateEvent, splitStateMapKey, stateMapKey, toRoomEvent, type RoomEvent, type StateMap } from './event';
import { resolveState } from './resolve';

export interface StateEntry {
  readonly type: string;
  readonly state_key: string;
  readonly event_id: string;
}

export interface RejectedEvent {
  readonly event_id: string;
  readonly reason: AuthRejection;
}

export interface ReplayResult {
  readonly roomVersion: string;
  /** The resolved state of the forward extremities, sorted by (type, state_key). */
  readonly state: StateEntry[];
  readonly rejected: RejectedEvent[];
  readonly forwardExtremities: string[];
}

export class ReplayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayError';
  }
}

export function stateEntries(state: StateMap): StateEntry[] {
  const entries = [...state].map(([key, event_id]) => ({ ...splitStateMapKey(key), event_id }));
  entries.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.state_key < b.state_key ? -1 : a.state_key > b.state_key ? 1 : 0));
  return entries;
}

function findCreate(events: readonly RoomEvent[]): RoomEvent {
  const creates = events.filter((e) => e.type === 'm.room.create' && e.state_key === '' && e.prev_events.length === 0);
  if (creates.length === 0) throw new ReplayError('no m.room.create event (with state_key "" and no prev_events) among the events');
  if (creates.length > 1) throw new ReplayError(`more than one m.room.create event: ${creates.map((e) => e.event_id).join(', ')}`);
  return creates[0];
}

/**
 * Replays `input` (an array of events in any order). The room version comes from the create event's
 * `content.room_version`, default "1". Rejected events do not change state and are not forward extremities.
 */
export function replayRoom(input: unknown, ports: AuthPorts = {}): ReplayResult {
  if (!Array.isArray(input)) throw new ReplayError('expected a JSON array of events');
  const parsed: RoomEvent[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of input.entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ReplayError(`entry ${i} is not an event object`);
    let e: RoomEvent;
    try {
      e = toRoomEvent(raw as Record<string, unknown>);
    } catch (err) {
      if (err instanceof InvalidEventError) throw new ReplayError(`entry ${i}: ${err.message}`);
      throw err;
    }
    if (seen.has(e.event_id)) throw new ReplayError(`event ${e.event_id} appears twice`);
    seen.add(e.event_id);
    parsed.push(e);
  }
  const create = findCreate(parsed);
  const version = create.content.room_version ?? '1';
  if (!isSupportedRoomVersion(version)) throw new ReplayError(`unsupported room version ${JSON.stringify(version)}`);
  const rules: RoomVersionRules = roomVersionRules(version);

  let depths: Map<string, number>;
  try {
    depths = computeDepths(parsed);
  } catch (err) {
    throw new ReplayError((err as Error).message);
  }
  const events = parsed.map((e) => (e.depth === undefined ? { ...e, depth: depths.get(e.event_id)! } : e));
  const byId = new Map(events.map((e) => [e.event_id, e]));
  const lookup = (id: string) => byId.get(id);
  const rejected = new Map<string, AuthRejection>();
  const isRejected = (id: string) => rejected.has(id);
  const opts = { rules, lookup, isRejected, ports };

  // State after each event, dropped once every accepted child has used it.
  const pendingChildren = new Map<string, number>();
  for (const e of events) for (const p of new Set(e.prev_events)) if (byId.has(p)) pendingChildren.set(p, (pendingChildren.get(p) ?? 0) + 1);
  const stateAfter = new Map<string, StateMap>();
  const empty: StateMap = new Map();
  const hasAcceptedChild = new Set<string>();

  const roomId = roomOfEvent(create);
  for (const e of topologicalOrder(events)) {
    if (roomOfEvent(e) !== roomId) {
      // An event of another room among the input: never part of this room's state, nor a way into it.
      rejected.set(e.event_id, { code: 'event_other_room', rule: 'room_id', message: `event ${e.event_id} is in room ${String(roomOfEvent(e))}, not ${String(roomId)}` });
      stateAfter.set(e.event_id, empty);
      continue;
    }
    const prevs = [...new Set(e.prev_events)].filter((p) => byId.has(p));
    const before = prevs.length === 0 ? empty : prevs.length === 1 ? stateAfter.get(prevs[0])! : resolveState(prevs.map((p) => stateAfter.get(p)!), opts);
    let verdict = authorizeByAuthEvents(e, lookup, rules, isRejected, ports);
    if (verdict.allowed) verdict = authorizeEvent(e, authStateFromMap(before, lookup, e.room_id), rules, ports);
    if (!verdict.allowed) {
      rejected.set(e.event_id, verdict.reason);
      stateAfter.set(e.event_id, before);
    } else if (isStateEvent(e)) {
      const after = new Map(before);
      after.set(stateMapKey(e.type, e.state_key!), e.event_id);
      stateAfter.set(e.event_id, after);
    } else stateAfter.set(e.event_id, before);
    for (const p of prevs) {
      if (verdict.allowed) hasAcceptedChild.add(p);
      const left = pendingChildren.get(p)! - 1;
      pendingChildren.set(p, left);
      if (left === 0 && hasAcceptedChild.has(p)) stateAfter.delete(p);
    }
  }

  // Forward extremities: accepted events no accepted event builds on, directly or through rejected events.
  const extremities = forwardExtremities(events, (e) => !rejected.has(e.event_id));
  const finalState = resolveState(extremities.map((e) => stateAfter.get(e.event_id)!), opts);
  return {
    roomVersion: version,
    state: stateEntries(finalState),
    rejected: events.filter((e) => rejected.has(e.event_id)).map((e) => ({ event_id: e.event_id, reason: rejected.get(e.event_id)! })),
    forwardExtremities: extremities.map((e) => e.event_id).sort(),
  };
}
