// Reads of a room's DAG and state for the federation read endpoints (ingress): state at an event, auth
// chains, backfill and missing-events walks, and whether a server may see an event.
import type { Pdu } from '@fedgate/protocol';
import { authClosure, authChain, domainOf, splitStateMapKey, stateMapKey } from '@fedgate/room-state';
import { pduWithRedaction, type EventRecord, type Store } from '@fedgate/store';
import { EventGraph } from './event-graph';
import { toRoomStateMap } from './state-keys';

export interface StateIdsAt {
  pduIds: string[];
  authChainIds: string[];
}

export interface StateAt {
  pdus: Pdu[];
  authChain: Pdu[];
}

export interface MissingEventsQuery {
  earliestEvents: string[];
  latestEvents: string[];
  limit: number;
  minDepth?: number;
}

/** Pure reads over the Store; every answer holds only events that passed auth (rejected ones are never served). */
export class RoomReader {
  constructor(private readonly store: Store) {}

  async roomVersion(roomId: string): Promise<string | undefined> {
    return (await this.store.rooms.get(roomId))?.roomVersion;
  }

  /** An event as the federation API serves it (v1–2 with event_id), or undefined if unknown or rejected. */
  async event(eventId: string): Promise<{ roomId: string; pdu: Pdu } | undefined> {
    const record = await this.store.events.get(eventId);
    if (!record || record.status === 'rejected') return undefined;
    return { roomId: record.roomId, pdu: await this.serve(record) };
  }

  /** The room's current state as `type\0state_key` → event ID. */
  async currentState(roomId: string): Promise<Map<string, string> | undefined> {
    const room = await this.store.rooms.get(roomId);
    if (!room?.currentStateId) return undefined;
    const state = await this.store.state.load(room.currentStateId);
    return state && toRoomStateMap(state);
  }

  /** State before `eventId` (what /state_ids answers) and the auth chain of those events. */
  async stateIdsAt(roomId: string, eventId: string): Promise<StateIdsAt | undefined> {
    const record = await this.store.events.get(eventId);
    if (!record || record.roomId !== roomId) return undefined;
    const before = await this.store.state.stateBeforeEvent(eventId);
    if (!before) return undefined;
    const pduIds = [...before.values()];
    const graph = new EventGraph(this.store);
    await graph.loadAuthClosure(pduIds, roomId);
    return { pduIds, authChainIds: [...authChain(pduIds, graph.lookup)] };
  }

  async stateAt(roomId: string, eventId: string): Promise<StateAt | undefined> {
    const ids = await this.stateIdsAt(roomId, eventId);
    if (!ids) return undefined;
    return { pdus: await this.serveMany(ids.pduIds), authChain: await this.serveMany(ids.authChainIds) };
  }

  /** The full auth chain of an event (/event_auth). */
  async eventAuth(roomId: string, eventId: string): Promise<Pdu[] | undefined> {
    const record = await this.store.events.get(eventId);
    if (!record || record.roomId !== roomId) return undefined;
    const graph = new EventGraph(this.store);
    await graph.loadAuthClosure([eventId], roomId);
    const chain = authClosure(record.authEventIds, graph.lookup);
    return this.serveMany([...chain]);
  }

  /** Walks prev_events back from `fromEventIds` (included), deepest first, up to `limit` events. */
  async backfill(roomId: string, fromEventIds: readonly string[], limit: number): Promise<Pdu[]> {
    const seen = new Set<string>();
    const out: EventRecord[] = [];
    let frontier = [...new Set(fromEventIds)];
    const queue: EventRecord[] = [];
    while ((frontier.length > 0 || queue.length > 0) && out.length < limit) {
      if (frontier.length > 0) {
        const records = await this.store.events.getMany(frontier.filter((id) => !seen.has(id)));
        for (const id of frontier) seen.add(id);
        for (const r of records.values()) if (r.roomId === roomId) queue.push(r);
        frontier = [];
        queue.sort((a, b) => b.depth - a.depth);
      }
      const next = queue.shift();
      if (!next) break;
      if (next.status !== 'rejected') out.push(next);
      frontier = next.prevEventIds.filter((id) => !seen.has(id));
    }
    return Promise.all(out.map((r) => this.serve(r)));
  }

  /** Events between `earliestEvents` and `latestEvents` (neither included), oldest first, up to `limit`. */
  async missingEvents(roomId: string, query: MissingEventsQuery): Promise<Pdu[]> {
    const stop = new Set(query.earliestEvents);
    const seen = new Set<string>([...query.latestEvents, ...stop]);
    const latest = await this.store.events.getMany(query.latestEvents);
    let frontier = [...latest.values()].filter((r) => r.roomId === roomId).flatMap((r) => r.prevEventIds);
    const found: EventRecord[] = [];
    while (frontier.length > 0 && found.length < query.limit) {
      const ids = [...new Set(frontier)].filter((id) => !seen.has(id));
      ids.forEach((id) => seen.add(id));
      const records = [...(await this.store.events.getMany(ids)).values()]
        .filter((r) => r.roomId === roomId && r.status !== 'rejected' && r.depth >= (query.minDepth ?? 0))
        .sort((a, b) => b.depth - a.depth);
      frontier = [];
      for (const r of records) {
        if (found.length >= query.limit) break;
        found.push(r);
        frontier.push(...r.prevEventIds);
      }
    }
    found.sort((a, b) => a.depth - b.depth);
    return Promise.all(found.map((r) => this.serve(r)));
  }

  /**
   * Whether `server` may see `eventId` (history visibility, simplified): world_readable rooms to anyone;
   * otherwise the server had a member joined (or invited, for `invited`) at the event or has one now (`shared`).
   */
  async serverCanSee(server: string, eventId: string): Promise<boolean> {
    const record = await this.store.events.get(eventId);
    if (!record) return false;
    const refs = await this.store.state.getForEvent(eventId);
    const at = refs && (await this.store.state.load(refs.after));
    if (!at) return false;
    const state = toRoomStateMap(at);
    const visibilityId = state.get(stateMapKey('m.room.history_visibility', ''));
    const visibility = visibilityId ? (await this.store.events.get(visibilityId))?.pdu.content.history_visibility : 'shared';
    if (visibility === 'world_readable') return true;
    const memberships = await this.membershipsOf(server, state);
    if (memberships.includes('join')) return true;
    if (visibility === 'invited' && memberships.includes('invite')) return true;
    if (visibility === 'shared') {
      const current = await this.currentState(record.roomId);
      return current ? (await this.membershipsOf(server, current)).includes('join') : false;
    }
    return false;
  }

  private async membershipsOf(server: string, state: Map<string, string>): Promise<string[]> {
    const ids: string[] = [];
    for (const [key, id] of state) {
      const { type, state_key } = splitStateMapKey(key);
      if (type === 'm.room.member' && domainOf(state_key) === server) ids.push(id);
    }
    const records = await this.store.events.getMany(ids);
    return [...records.values()].map((r) => String(r.pdu.content.membership));
  }

  private async serveMany(ids: string[]): Promise<Pdu[]> {
    const records = await this.store.events.getMany(ids);
    const out: Pdu[] = [];
    for (const id of ids) {
      const r = records.get(id);
      if (r && r.status !== 'rejected') out.push(await this.serve(r));
    }
    return out;
  }

  /**
   * Stored PDUs are kept in wire form (v1–2 with their event_id), which is what the API serves; a redacted
   * event is served in its redacted form (same hashes and signatures, so it still verifies).
   */
  private async serve(record: EventRecord): Promise<Pdu> {
    return pduWithRedaction(record, record.redactedBy === undefined ? undefined : await this.roomVersion(record.roomId));
  }
}
