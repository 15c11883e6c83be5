// Helpers over the prev_events DAG.
import type { RoomEvent } from './event';
import { MinHeap } from './min-heap';

export function compareByDepthTimestampId(a: RoomEvent, b: RoomEvent, depth: ReadonlyMap<string, number>): number {
  return (depth.get(a.event_id)! - depth.get(b.event_id)!) || a.origin_server_ts - b.origin_server_ts || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0);
}

/**
 * Depth of each event: its own `depth` when given, else one more than its deepest known prev event (0 for roots).
 * Prev events outside the list do not count; a cycle among the events throws (see topologicalOrder).
 */
export function computeDepths(events: readonly RoomEvent[]): Map<string, number> {
  const byId = new Map(events.map((e) => [e.event_id, e]));
  const depth = new Map<string, number>();
  for (const e of topologicalOrder(events, { useGivenDepth: false })) {
    if (typeof e.depth === 'number') depth.set(e.event_id, e.depth);
    else {
      let d = 0;
      for (const p of e.prev_events) if (byId.has(p)) d = Math.max(d, depth.get(p)! + 1);
      depth.set(e.event_id, d);
    }
  }
  return depth;
}

/**
 * Parents-first order of `events` by prev_events (Kahn's algorithm). Among ready events the one with the lowest
 * (depth, origin_server_ts, event_id) comes first. References to events outside the list are ignored.
 * Throws if the prev_events graph has a cycle.
 */
export function topologicalOrder(events: readonly RoomEvent[], opts: { useGivenDepth?: boolean } = {}): RoomEvent[] {
  const byId = new Map<string, RoomEvent>();
  for (const e of events) byId.set(e.event_id, e);
  const inDegree = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const e of byId.values()) {
    let n = 0;
    for (const p of new Set(e.prev_events)) {
      if (!byId.has(p)) continue;
      n++;
      let list = children.get(p);
      if (!list) children.set(p, (list = []));
      list.push(e.event_id);
    }
    inDegree.set(e.event_id, n);
  }
  const useDepth = opts.useGivenDepth !== false;
  const key = (e: RoomEvent) => (useDepth && typeof e.depth === 'number' ? e.depth : 0);
  const heap = new MinHeap<RoomEvent>((a, b) => key(a) - key(b) || a.origin_server_ts - b.origin_server_ts || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0));
  for (const e of byId.values()) if (inDegree.get(e.event_id) === 0) heap.push(e);
  const order: RoomEvent[] = [];
  while (heap.size > 0) {
    const e = heap.pop()!;
    order.push(e);
    for (const c of children.get(e.event_id) ?? []) {
      const d = inDegree.get(c)! - 1;
      inDegree.set(c, d);
      if (d === 0) heap.push(byId.get(c)!);
    }
  }
  if (order.length !== byId.size) throw new Error(`prev_events form a cycle among ${byId.size - order.length} events`);
  return order;
}

/**
 * The events nothing builds on. `include` says which events may be extremities (e.g. not rejected, not soft
 * failed); the others are never extremities, and on their own hide nothing, so a soft-failed tip leaves its
 * parent an extremity. But once an included event builds on an excluded one, everything the excluded one builds
 * on is covered as well: an extremity is never an ancestor of another. Order is that of `events`.
 */
export function forwardExtremities(events: readonly RoomEvent[], include: (e: RoomEvent) => boolean = () => true): RoomEvent[] {
  const byId = new Map(events.map((e) => [e.event_id, e]));
  const kept = events.filter(include);
  const keptIds = new Set(kept.map((e) => e.event_id));
  const covered = new Set<string>();
  const pending: string[] = [];
  for (const e of kept) pending.push(...e.prev_events);
  while (pending.length > 0) {
    const id = pending.pop()!;
    if (covered.has(id)) continue;
    covered.add(id);
    // An included event's own prev events are already pending; only excluded ones are walked through.
    const e = byId.get(id);
    if (e && !keptIds.has(id)) pending.push(...e.prev_events);
  }
  return kept.filter((e) => !covered.has(e.event_id));
}
