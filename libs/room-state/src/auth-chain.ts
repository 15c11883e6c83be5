// Auth chains: everything reachable through `auth_events` links.
import type { EventLookup, RoomEvent } from './event';

/**
 * The union of the auth chains of `eventIds`: their auth events, those events' auth events, and so on.
 * A start event is included only when another start event's chain reaches it. Unknown IDs are skipped.
 */
export function authChain(eventIds: Iterable<string>, lookup: EventLookup): Set<string> {
  const chain = new Set<string>();
  const starts: RoomEvent[] = [];
  for (const id of eventIds) {
    const e = lookup(id);
    if (e) starts.push(e);
  }
  for (const e of starts) walkAuthEvents(e, chain, lookup);
  return chain;
}

/** Adds to `into` everything reachable from `event`'s auth events; each event is looked up and pushed once. */
function walkAuthEvents(event: RoomEvent, into: Set<string>, lookup: EventLookup): void {
  const stack: RoomEvent[] = [event];
  while (stack.length > 0) {
    const auth = stack.pop()!.auth_events;
    for (let i = 0; i < auth.length; i++) {
      const id = auth[i];
      if (into.has(id)) continue;
      const a = lookup(id);
      if (!a) continue;
      into.add(id);
      stack.push(a);
    }
  }
}

/** `eventIds` together with their auth chains (the closure under `auth_events`). */
export function authClosure(eventIds: Iterable<string>, lookup: EventLookup, into: Set<string> = new Set()): Set<string> {
  for (const id of eventIds) {
    if (into.has(id)) continue;
    const e = lookup(id);
    if (!e) continue;
    into.add(id);
    walkAuthEvents(e, into, lookup);
  }
  return into;
}

/**
 * The conflicted state subgraph (state resolution v2.1): every event on an `auth_events` path from one conflicted
 * event to another, endpoints included.
 */
export function conflictedStateSubgraph(conflicted: Iterable<string>, lookup: EventLookup): Set<string> {
  const targets = new Set(conflicted);
  // reaches: event → whether some conflicted event is reachable from it (itself included).
  const reaches = new Map<string, boolean>();
  const subgraph = new Set<string>();
  for (const start of targets) {
    if (!lookup(start)) continue;
    // Iterative post-order DFS so deep chains cannot overflow the stack.
    const stack: Array<{ id: string; next: number }> = [{ id: start, next: 0 }];
    const onStack = new Set<string>([start]);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1];
      const auth = lookup(frame.id)?.auth_events ?? [];
      if (frame.next < auth.length) {
        const child = auth[frame.next++];
        if (!reaches.has(child) && !onStack.has(child) && lookup(child)) {
          onStack.add(child);
          stack.push({ id: child, next: 0 });
        }
        continue;
      }
      stack.pop();
      onStack.delete(frame.id);
      let r = targets.has(frame.id);
      for (const a of auth) if (reaches.get(a)) r = true;
      reaches.set(frame.id, r);
      if (r) subgraph.add(frame.id);
    }
  }
  return subgraph;
}
