// Room-state works on a synchronous EventLookup; this loads what it will look up from the store first.
import type { Pdu } from '@fedgate/protocol';
import { createEventIdForRoom, toRoomEvent, type RoomEvent } from '@fedgate/room-state';
import type { EventRecord, EventStatus, Store } from '@fedgate/store';

export class EventGraph {
  private readonly events = new Map<string, RoomEvent>();
  private readonly status = new Map<string, EventStatus>();
  private readonly records = new Map<string, EventRecord>();

  constructor(private readonly store: Store) {}

  readonly lookup = (eventId: string): RoomEvent | undefined => this.events.get(eventId);
  readonly isRejected = (eventId: string): boolean => this.status.get(eventId) === 'rejected';

  has(eventId: string): boolean {
    return this.events.has(eventId);
  }

  record(eventId: string): EventRecord | undefined {
    return this.records.get(eventId);
  }

  /** Adds an event not (yet) in the store, e.g. one being processed or fetched from a remote. */
  add(eventId: string, pdu: Pdu | Record<string, unknown>, status: EventStatus = 'accepted'): RoomEvent {
    const event = toRoomEvent(pdu, eventId);
    this.events.set(eventId, event);
    this.status.set(eventId, status);
    return event;
  }

  addRecord(record: EventRecord): RoomEvent {
    this.records.set(record.eventId, record);
    return this.add(record.eventId, record.pdu, record.status);
  }

  setStatus(eventId: string, status: EventStatus): void {
    this.status.set(eventId, status);
  }

  /** Loads the stored events among `ids` that are not loaded yet. */
  async load(ids: Iterable<string>): Promise<void> {
    const wanted = [...new Set(ids)].filter((id) => !this.events.has(id));
    if (wanted.length === 0) return;
    const found = await this.store.events.getMany(wanted);
    for (const record of found.values()) this.addRecord(record);
  }

  /** Loads `ids` and everything reachable through their auth events (plus a v12 room's create event). */
  async loadAuthClosure(ids: Iterable<string>, roomId?: string): Promise<void> {
    const start = [...ids];
    if (roomId?.startsWith('!')) start.push(createEventIdForRoom(roomId));
    let frontier = start;
    const visited = new Set<string>();
    while (frontier.length > 0) {
      await this.load(frontier);
      const next: string[] = [];
      for (const id of frontier) {
        if (visited.has(id)) continue;
        visited.add(id);
        const e = this.events.get(id);
        if (!e) continue;
        for (const a of e.auth_events) if (!visited.has(a)) next.push(a);
      }
      frontier = next;
    }
  }
}
