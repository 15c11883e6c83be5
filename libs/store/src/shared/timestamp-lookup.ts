// `timestamp_to_event` (client-server and federation): the event of a room closest to a time, in one
// direction. Read through the depth index a page at a time, so one call looks at a bounded number of events.
import type { EventRecord } from '../ports/events';
import type { Store } from '../ports/store';

/** Events looked at per lookup at most; a room with a longer history answers from its latest ones. */
export const MAX_TIMESTAMP_SCAN = 20_000;
const PAGE = 500;

export interface TimestampLookup {
  roomId: string;
  ts: number;
  /** `f`: the first event at or after `ts`; `b`: the last event at or before it. */
  dir: 'f' | 'b';
  /** Whether the reader may have this event (history visibility); checked only for candidates. */
  mayView: (record: EventRecord) => Promise<boolean>;
}

/** The closest accepted timeline event (ties: the deeper one going back, the shallower going forward), or undefined. */
export async function closestEventByTimestamp(store: Store, lookup: TimestampLookup): Promise<EventRecord | undefined> {
  return (await timestampLookup(store, lookup)).found;
}

export interface TimestampLookupResult {
  found?: EventRecord;
  /** The lowest depth of the timeline held here (looked at), and whether it reaches the room's create event. */
  oldestDepth: number;
  reachesCreate: boolean;
}

/** `closestEventByTimestamp`, also telling whether the history held here may have a gap before it. */
export async function timestampLookup(store: Store, lookup: TimestampLookup): Promise<TimestampLookupResult> {
  let oldestDepth = Number.MAX_SAFE_INTEGER;
  let reachesCreate = false;
  const extremities = await store.events.getMany(await store.rooms.getForwardExtremities(lookup.roomId));
  let maxDepth = Math.max(0, ...[...extremities.values()].map((e) => e.depth));
  const candidates: EventRecord[] = [];
  let scanned = 0;
  while (scanned < MAX_TIMESTAMP_SCAN && maxDepth >= 0) {
    const page = await store.events.byDepthRange({ roomId: lookup.roomId, minDepth: 0, maxDepth, limit: PAGE, excludeRejected: true });
    if (page.length === 0) break;
    scanned += page.length;
    for (const record of page) {
      if (record.status !== 'accepted' || record.outlier) continue;
      oldestDepth = Math.min(oldestDepth, record.depth);
      if (record.type === 'm.room.create' && record.stateKey === '') reachesCreate = true;
      const ts = originTs(record);
      if (lookup.dir === 'f' ? ts >= lookup.ts : ts <= lookup.ts) candidates.push(record);
    }
    const lowest = page[page.length - 1].depth;
    if (page.length < PAGE) break;
    // A page may end inside one depth: read that depth's rest with the next page (duplicates are harmless).
    maxDepth = page[0].depth === lowest ? lowest - 1 : lowest;
  }
  const unique = [...new Map(candidates.map((r) => [r.eventId, r])).values()];
  unique.sort((a, b) => (lookup.dir === 'f' ? originTs(a) - originTs(b) || a.depth - b.depth : originTs(b) - originTs(a) || b.depth - a.depth));
  for (const record of unique) if (await lookup.mayView(record)) return { found: record, oldestDepth, reachesCreate };
  return { oldestDepth, reachesCreate };
}

export function originTs(record: EventRecord): number {
  const ts = (record.pdu as { origin_server_ts?: unknown }).origin_server_ts;
  return typeof ts === 'number' ? ts : 0;
}
