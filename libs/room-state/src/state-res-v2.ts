// State resolution v2 (room versions 2–11) and v2.1 (room version 12), as the spec's "State resolution" sections define them.
import type { RoomVersionRules } from '@fedgate/protocol';
import { authClosure, conflictedStateSubgraph } from './auth-chain';
import { authorizeEvent, createEventIdForRoom, type AuthPorts, type AuthState } from './authorize';
import { stateMapKey, type EventLookup, type RoomEvent, type StateMap } from './event';
import { MinHeap } from './min-heap';
import { userPowerLevel } from './power-levels';

export interface ResolveOptions {
  readonly rules: RoomVersionRules;
  readonly lookup: EventLookup;
  /** Events rejected on receipt; their use as auth events is skipped in iterative auth checks. */
  readonly isRejected?: (eventId: string) => boolean;
  readonly ports?: AuthPorts;
  /** The room being resolved; resolveState refuses any event of another room (default: the room of the first known event). */
  readonly roomId?: string;
}

export interface StatePartition {
  readonly unconflicted: Map<string, string>;
  /** Event IDs of the conflicted state set. */
  readonly conflicted: Set<string>;
}

/** A key present in every state set with one value is unconflicted; anything else (including a key missing from some set) is conflicted. */
export function partitionState(stateSets: readonly StateMap[]): StatePartition {
  const unconflicted = new Map<string, string>();
  const conflicted = new Set<string>();
  const n = stateSets.length;
  const seenKeys = new Set<string>();
  for (let i = 0; i < n; i++) {
    for (const [key, value] of stateSets[i]) {
      if (seenKeys.has(key)) continue;
      seenKeys.add(key);
      let same = i === 0;
      if (same) {
        for (let j = 1; j < n; j++) {
          if (stateSets[j].get(key) !== value) {
            same = false;
            break;
          }
        }
      }
      if (same) unconflicted.set(key, value);
      else for (let j = 0; j < n; j++) {
        const v = stateSets[j].get(key);
        if (v !== undefined) conflicted.add(v);
      }
    }
  }
  return { unconflicted, conflicted };
}

/**
 * The auth difference, where each state set's full auth chain includes the set's own events.
 * Everything reachable from the unconflicted state is in every chain, so only the conflicted events' chains are walked
 * beyond it.
 */
export function authDifference(stateSets: readonly StateMap[], partition: StatePartition, lookup: EventLookup): Set<string> {
  const common = authClosure(partition.unconflicted.values(), lookup);
  const counts = new Map<string, number>();
  for (const set of stateSets) {
    const seen = new Set<string>();
    const stack: string[] = [];
    for (const [key, id] of set) if (!partition.unconflicted.has(key)) stack.push(id);
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (seen.has(id) || common.has(id)) continue;
      const e = lookup(id);
      if (!e) continue;
      seen.add(id);
      counts.set(id, (counts.get(id) ?? 0) + 1);
      for (const a of e.auth_events) if (!seen.has(a) && !common.has(a)) stack.push(a);
    }
  }
  const difference = new Set<string>();
  for (const [id, count] of counts) if (count < stateSets.length) difference.add(id);
  return difference;
}

/** A power event: power levels, join rules, or a kick or ban of someone else. */
export function isPowerEvent(event: RoomEvent): boolean {
  if (event.state_key === undefined) return false;
  if (event.type === 'm.room.power_levels' || event.type === 'm.room.join_rules') return event.state_key === '';
  if (event.type === 'm.room.member') {
    const m = event.content.membership;
    return (m === 'leave' || m === 'ban') && event.sender !== event.state_key;
  }
  return false;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Per-resolution memo of each event's power-levels and create auth events. */
class AuthEventIndex {
  private readonly powerLevels = new Map<string, RoomEvent | null>();
  private readonly creates = new Map<string, RoomEvent | null>();
  constructor(private readonly lookup: EventLookup, private readonly rules: RoomVersionRules) {}

  powerLevelsOf(event: RoomEvent): RoomEvent | undefined {
    let pl = this.powerLevels.get(event.event_id);
    if (pl === undefined) {
      pl = null;
      for (const id of event.auth_events) {
        const a = this.lookup(id);
        if (a?.type === 'm.room.power_levels' && a.state_key === '') {
          pl = a;
          break;
        }
      }
      this.powerLevels.set(event.event_id, pl);
    }
    return pl ?? undefined;
  }

  createOf(event: RoomEvent): RoomEvent | undefined {
    let create = this.creates.get(event.event_id);
    if (create === undefined) {
      create = null;
      if (this.rules.roomIdFromCreateEvent) {
        if (event.room_id) create = this.lookup(createEventIdForRoom(event.room_id)) ?? null;
      } else {
        for (const id of event.auth_events) {
          const a = this.lookup(id);
          if (a?.type === 'm.room.create') {
            create = a;
            break;
          }
        }
      }
      this.creates.set(event.event_id, create);
    }
    return create ?? undefined;
  }

  senderPower(event: RoomEvent): number {
    return userPowerLevel(event.sender, this.powerLevelsOf(event), this.createOf(event), this.rules);
  }
}

/**
 * Reverse topological power ordering: Kahn's algorithm over the auth-event DAG restricted to `events`, taking at each
 * step the event whose sender has the highest power (from its own auth events), then lowest origin_server_ts, then event ID.
 */
export function reverseTopologicalPowerOrder(events: readonly RoomEvent[], lookup: EventLookup, rules: RoomVersionRules, index = new AuthEventIndex(lookup, rules)): RoomEvent[] {
  const inSet = new Map<string, RoomEvent>();
  for (const e of events) inSet.set(e.event_id, e);
  const power = new Map<string, number>();
  const inDegree = new Map<string, number>();
  const children = new Map<string, RoomEvent[]>();
  for (const e of inSet.values()) {
    power.set(e.event_id, index.senderPower(e));
    let n = 0;
    for (const a of new Set(e.auth_events)) {
      if (!inSet.has(a)) continue;
      n++;
      let list = children.get(a);
      if (!list) children.set(a, (list = []));
      list.push(e);
    }
    inDegree.set(e.event_id, n);
  }
  const heap = new MinHeap<RoomEvent>((x, y) => {
    const px = power.get(x.event_id)!;
    const py = power.get(y.event_id)!;
    if (px !== py) return px > py ? -1 : 1;
    return x.origin_server_ts - y.origin_server_ts || compareIds(x.event_id, y.event_id);
  });
  for (const e of inSet.values()) if (inDegree.get(e.event_id) === 0) heap.push(e);
  const order: RoomEvent[] = [];
  while (heap.size > 0) {
    const e = heap.pop()!;
    order.push(e);
    for (const c of children.get(e.event_id) ?? []) {
      const d = inDegree.get(c.event_id)! - 1;
      inDegree.set(c.event_id, d);
      if (d === 0) heap.push(c);
    }
  }
  return order;
}

/** Mainline ordering of `events` based on the power-levels event `powerLevelsId` (if any). */
export function mainlineOrder(events: readonly RoomEvent[], powerLevelsId: string | undefined, lookup: EventLookup, rules: RoomVersionRules, index = new AuthEventIndex(lookup, rules)): RoomEvent[] {
  const mainline = new Map<string, number>();
  let p = powerLevelsId === undefined ? undefined : lookup(powerLevelsId);
  for (let i = 0; p && !mainline.has(p.event_id); i++) {
    mainline.set(p.event_id, i);
    p = index.powerLevelsOf(p);
  }
  // Memo of positions for power-levels events met while walking, so shared chains are walked once.
  const memo = new Map<string, number>();
  const position = (e: RoomEvent): number => {
    const walked: string[] = [];
    let pos = Infinity;
    let cur = index.powerLevelsOf(e);
    const guard = new Set<string>();
    while (cur && !guard.has(cur.event_id)) {
      const known = mainline.get(cur.event_id) ?? memo.get(cur.event_id);
      if (known !== undefined) {
        pos = known;
        break;
      }
      guard.add(cur.event_id);
      walked.push(cur.event_id);
      cur = index.powerLevelsOf(cur);
    }
    for (const id of walked) memo.set(id, pos);
    return pos;
  };
  const keyed = events.map((e) => ({ e, pos: position(e) }));
  keyed.sort((x, y) => {
    if (x.pos !== y.pos) return x.pos > y.pos ? -1 : 1;
    return x.e.origin_server_ts - y.e.origin_server_ts || compareIds(x.e.event_id, y.e.event_id);
  });
  return keyed.map((k) => k.e);
}

/**
 * Applies each event in order to `state` when the auth rules allow it. A key the rules need that the state lacks is
 * taken from the event's own auth events, unless that auth event was rejected.
 */
export function iterativeAuthChecks(events: readonly RoomEvent[], state: Map<string, string>, opts: ResolveOptions): Map<string, string> {
  const { lookup, rules } = opts;
  const isRejected = opts.isRejected ?? (() => false);
  const createKey = stateMapKey('m.room.create', '');
  for (const event of events) {
    if (event.state_key === undefined) continue;
    let fallback: Map<string, RoomEvent> | undefined;
    const fromAuthEvents = (key: string): RoomEvent | undefined => {
      if (!fallback) {
        fallback = new Map();
        for (const id of event.auth_events) {
          const a = lookup(id);
          if (a && a.state_key !== undefined && !isRejected(id)) fallback.set(stateMapKey(a.type, a.state_key), a);
        }
      }
      return fallback.get(key);
    };
    const get = (key: string): RoomEvent | undefined => {
      const id = state.get(key);
      return id !== undefined ? lookup(id) : fromAuthEvents(key);
    };
    let create = get(createKey);
    if (rules.roomIdFromCreateEvent && event.room_id) create = lookup(createEventIdForRoom(event.room_id)) ?? create;
    const authState: AuthState = { create, get: (type, sk) => get(stateMapKey(type, sk)) };
    if (authorizeEvent(event, authState, rules, opts.ports).allowed) state.set(stateMapKey(event.type, event.state_key), event.event_id);
  }
  return state;
}

/** Resolves state sets with state resolution v2, or v2.1 when the room version says so. */
export function resolveStateV2(stateSets: readonly StateMap[], opts: ResolveOptions): Map<string, string> {
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1) return new Map(stateSets[0]);
  const { lookup, rules } = opts;
  const partition = partitionState(stateSets);
  if (partition.conflicted.size === 0) return partition.unconflicted;
  const v21 = rules.stateResolution === 'v2.1';

  const full = new Set(partition.conflicted);
  for (const id of authDifference(stateSets, partition, lookup)) full.add(id);
  if (v21) for (const id of conflictedStateSubgraph(partition.conflicted, lookup)) full.add(id);
  const fullEvents: RoomEvent[] = [];
  for (const id of full) {
    const e = lookup(id);
    if (e) fullEvents.push(e);
  }

  // Step 1: power events plus the parts of their auth chains inside the full conflicted set.
  const powerIds = new Set<string>();
  const stack: string[] = [];
  for (const e of fullEvents) if (isPowerEvent(e)) stack.push(e.event_id);
  const visited = new Set<string>();
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (visited.has(id)) continue;
    visited.add(id);
    if (full.has(id)) powerIds.add(id);
    const e = lookup(id);
    if (e) for (const a of e.auth_events) if (!visited.has(a)) stack.push(a);
  }
  const index = new AuthEventIndex(lookup, rules);
  const powerEvents = fullEvents.filter((e) => powerIds.has(e.event_id));
  const sortedPower = reverseTopologicalPowerOrder(powerEvents, lookup, rules, index);

  // Step 2: v2 starts from the unconflicted state, v2.1 from nothing.
  const partial = iterativeAuthChecks(sortedPower, v21 ? new Map() : new Map(partition.unconflicted), opts);

  // Steps 3–4: everything else, in mainline order of the partially resolved power levels.
  const others = fullEvents.filter((e) => !powerIds.has(e.event_id));
  const sortedOthers = mainlineOrder(others, partial.get(stateMapKey('m.room.power_levels', '')), lookup, rules, index);
  const resolved = iterativeAuthChecks(sortedOthers, partial, opts);

  // Step 5: the unconflicted state wins.
  for (const [key, id] of partition.unconflicted) resolved.set(key, id);
  return resolved;
}
