// State resolution for room version 1, as rooms/v1.md describes it (known to reset state; kept for v1 rooms only).
import { createHash } from 'node:crypto';
import { authStateFromMap, authorizeEvent } from './authorize';
import { splitStateMapKey, stateMapKey, type RoomEvent, type StateMap } from './event';
import type { ResolveOptions } from './state-res-v2';

function sha1Hex(s: string): string {
  return createHash('sha1').update(s).digest('hex');
}

/** Ascending depth, then descending sha1(event_id). */
function orderForPass(events: RoomEvent[]): RoomEvent[] {
  const keyed = events.map((e) => ({ e, depth: e.depth ?? 0, sha: sha1Hex(e.event_id) }));
  keyed.sort((a, b) => a.depth - b.depth || (a.sha < b.sha ? 1 : a.sha > b.sha ? -1 : 0));
  return keyed.map((k) => k.e);
}

export function resolveStateV1(stateSets: readonly StateMap[], opts: ResolveOptions): Map<string, string> {
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1) return new Map(stateSets[0]);
  const { lookup, rules } = opts;
  // A conflict is two different event IDs for one key; a key only some sets have is not a conflict here.
  const values = new Map<string, Set<string>>();
  for (const set of stateSets) {
    for (const [key, id] of set) {
      let s = values.get(key);
      if (!s) values.set(key, (s = new Set()));
      s.add(id);
    }
  }
  const resolved = new Map<string, string>();
  const conflicts = new Map<string, RoomEvent[]>();
  for (const [key, ids] of values) {
    if (ids.size === 1) resolved.set(key, ids.values().next().value!);
    else {
      const events = [...ids].map(lookup).filter((e): e is RoomEvent => e !== undefined);
      if (events.length > 0) conflicts.set(key, events);
    }
  }
  const allowed = (e: RoomEvent) => authorizeEvent(e, authStateFromMap(resolved, lookup, e.room_id), rules, opts.ports).allowed;

  // Power levels, then join rules, then each member key: first event in, then each next one while it passes auth.
  const pass = (key: string) => {
    const events = conflicts.get(key);
    if (!events) return;
    conflicts.delete(key);
    const [first, ...rest] = orderForPass(events);
    resolved.set(key, first.event_id);
    for (const e of rest) {
      if (!allowed(e)) break;
      resolved.set(key, e.event_id);
    }
  };
  pass(stateMapKey('m.room.power_levels', ''));
  pass(stateMapKey('m.room.join_rules', ''));
  const keys = [...conflicts.keys()].sort();
  for (const key of keys) if (splitStateMapKey(key).type === 'm.room.member') pass(key);

  // Everything else: the highest depth, lowest sha1(event_id) that passes auth; if none passes, the lowest-depth one.
  for (const key of keys) {
    const events = conflicts.get(key);
    if (!events) continue;
    const ordered = orderForPass(events).reverse();
    const chosen = ordered.find(allowed) ?? ordered[ordered.length - 1];
    resolved.set(key, chosen.event_id);
  }
  return resolved;
}
