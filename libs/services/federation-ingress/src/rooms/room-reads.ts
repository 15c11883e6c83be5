// The room reads ingress answers federation requests from, over the Store. (state-resolver's RoomReader was
// not there when this was written; switch to it when both agree on the semantics.)
import { redactEvent, type Pdu } from '@fedgate/protocol';
import { EventVisibility, pduWithRedaction, stateTupleKey, type EventRecord, type StateMap, type Store } from '@fedgate/store';

function pushUnseen(ids: readonly string[], seen: Set<string>, into: string[]): void {
  for (const id of ids) {
    if (seen.has(id)) continue;
    seen.add(id);
    into.push(id);
  }
}

export class RoomReads {
  constructor(private readonly store: Store) {}

  async roomVersion(roomId: string): Promise<string | undefined> {
    return (await this.store.rooms.get(roomId))?.roomVersion;
  }

  async currentState(roomId: string): Promise<StateMap | undefined> {
    const room = await this.store.rooms.get(roomId);
    if (!room?.currentStateId) return undefined;
    return this.store.state.load(room.currentStateId);
  }

  /** Content of the current state event (type, stateKey), if any. */
  async currentStateContent(roomId: string, type: string, stateKey = ''): Promise<Record<string, unknown> | undefined> {
    const state = await this.currentState(roomId);
    return this.contentIn(state, type, stateKey);
  }

  async contentIn(state: StateMap | undefined, type: string, stateKey = ''): Promise<Record<string, unknown> | undefined> {
    const eventId = state?.get(stateTupleKey(type, stateKey));
    if (!eventId) return undefined;
    return (await this.store.events.get(eventId))?.pdu.content as Record<string, unknown> | undefined;
  }

  /** History visibility for one server's read (cached per room for that read). */
  visibilityFor(serverName: string): EventVisibility {
    return new EventVisibility(this.store, { serverName });
  }

  /** Servers with joined members in the room's current state. */
  async joinedServers(roomId: string): Promise<string[]> {
    return this.store.rooms.getJoinedServers(roomId);
  }

  async event(eventId: string): Promise<EventRecord | undefined> {
    return this.store.events.get(eventId);
  }

  /** State before the event (what /state_ids answers), as event IDs of that room only. */
  async stateIdsBefore(roomId: string, eventId: string): Promise<string[] | undefined> {
    const state = await this.store.state.stateBeforeEvent(eventId);
    if (!state) return undefined;
    const records = await this.store.events.getMany([...state.values()]);
    return [...state.values()].filter((id) => records.get(id)?.roomId === roomId);
  }

  /**
   * Every event of `roomId` reachable through auth_events from `eventIds` (a start event only when another one's
   * chain reaches it). The walk never leaves the room: an auth event naming another room's event stops there.
   */
  async authChainIds(roomId: string, eventIds: readonly string[]): Promise<string[]> {
    const seen = new Set<string>();
    const chain: string[] = [];
    let frontier = [...eventIds];
    while (frontier.length > 0) {
      const records = await this.store.events.getMany(frontier);
      const candidates: string[] = [];
      for (const record of records.values()) {
        if (record.roomId !== roomId) continue;
        for (const authId of record.authEventIds) {
          if (seen.has(authId)) continue;
          seen.add(authId);
          candidates.push(authId);
        }
      }
      const found = await this.store.events.getMany(candidates);
      frontier = candidates.filter((id) => found.get(id)?.roomId === roomId);
      chain.push(...frontier);
    }
    return chain;
  }

  /** The PDU as served: redacted once a redaction was applied to it. */
  async served(record: EventRecord): Promise<Pdu> {
    return pduWithRedaction(record, record.redactedBy === undefined ? undefined : await this.roomVersion(record.roomId));
  }

  /** The PDU as served to a server that may not see it: its redacted form. */
  async servedRedacted(record: EventRecord): Promise<Pdu> {
    const roomVersion = await this.roomVersion(record.roomId);
    return redactEvent(record.pdu, roomVersion ?? '1') as Pdu;
  }

  async pdus(eventIds: readonly string[]): Promise<Pdu[]> {
    const records = await this.store.events.getMany([...eventIds]);
    const out: Pdu[] = [];
    for (const id of eventIds) {
      const record = records.get(id);
      if (record) out.push(await this.served(record));
    }
    return out;
  }

  /** Backfill: from `from` back through prev_events, breadth first, up to `limit` events of the room (the start events included), rejected events left out. */
  async backfill(roomId: string, from: readonly string[], limit: number): Promise<EventRecord[]> {
    const out: EventRecord[] = [];
    const seen = new Set<string>(from);
    let frontier = [...from];
    while (frontier.length > 0 && out.length < limit) {
      const records = await this.store.events.getMany(frontier);
      const next: string[] = [];
      for (const id of frontier) {
        const record = records.get(id);
        if (!record || record.roomId !== roomId || record.status === 'rejected') continue;
        if (out.length >= limit) break;
        out.push(record);
        pushUnseen(record.prevEventIds, seen, next);
      }
      frontier = next;
    }
    return out;
  }

  /**
   * get_missing_events: walking prev_events back from `latest` (excluded), the events not in `earliest` and
   * not below `minDepth`, oldest first, at most `limit`.
   */
  async missingEvents(roomId: string, earliest: readonly string[], latest: readonly string[], limit: number, minDepth: number): Promise<EventRecord[]> {
    const stop = new Set(earliest);
    const seen = new Set<string>([...latest, ...earliest]);
    const found: EventRecord[] = [];
    let frontier: string[] = [];
    const latestRecords = await this.store.events.getMany([...latest]);
    for (const record of latestRecords.values()) if (record.roomId === roomId && record.status !== 'rejected') pushUnseen(record.prevEventIds, seen, frontier);
    while (frontier.length > 0 && found.length < limit) {
      const records = await this.store.events.getMany(frontier);
      const next: string[] = [];
      for (const id of frontier) {
        const record = records.get(id);
        if (!record || record.roomId !== roomId || record.status === 'rejected' || stop.has(id) || record.depth < minDepth) continue;
        if (found.length >= limit) break;
        found.push(record);
        pushUnseen(record.prevEventIds, seen, next);
      }
      frontier = next;
    }
    return found.sort((a, b) => a.depth - b.depth);
  }
}
