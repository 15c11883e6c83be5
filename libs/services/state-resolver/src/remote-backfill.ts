// Outbound backfill: history from before the oldest events this server holds of a room, asked of the servers
// in the room (`/backfill`, `v` = the backward extremities). What comes back is verified, authorized against
// its auth events (fetched with /event_auth when not held) and kept as history: it moves neither current state
// nor forward extremities and is never published to the room log, so application services do not get it as new.
import type { BackfillCommand, BackfillReply } from '@fedgate/bus';
import { partitionRemoteEvents, verifyRemoteEvents, type FederationApi, type KeyRing } from '@fedgate/federation-client';
import { roomVersionRules, type RoomVersionRules } from '@fedgate/protocol';
import { domainOf, toRoomEvent } from '@fedgate/room-state';
import type { EventRecord, Store } from '@fedgate/store';
import { describeError } from './errors';
import { OutlierImporter } from './outliers';
import { auditRefused } from './refused-events';
import type { RoomLocks } from './room-locks';

/** How many events below the client's page are scanned for backward extremities. */
const SCAN_LIMIT = 2000;
/** How many backward extremities one request names (the lowest ones). */
const MAX_FROM_EVENTS = 20;
/** Largest `limit` asked of a remote server. */
const MAX_LIMIT = 100;
/** Backfilled events whose auth events are not held get their auth chain fetched, at most this many per request. */
const MAX_AUTH_FETCHES = 10;

export interface BackwardExtremities {
  /** Timeline events whose prev events this server does not hold in its timeline, lowest first. */
  eventIds: string[];
  /** The room's create event is in the timeline here and nothing earlier is missing. */
  complete: boolean;
}

export class RemoteBackfill {
  private readonly importer: OutlierImporter;

  constructor(
    private readonly store: Store,
    private readonly locks: RoomLocks,
    private readonly keyRing: KeyRing,
    private readonly api: FederationApi,
    private readonly serverName: string,
  ) {
    this.importer = new OutlierImporter(store, keyRing);
  }

  async onCommand(command: BackfillCommand): Promise<BackfillReply> {
    const room = await this.store.rooms.get(command.roomId);
    if (!room) return { ok: false, errcode: 'M_NOT_FOUND', error: `room ${command.roomId} is not known here`, status: 404 };
    if (!Number.isInteger(command.limit) || command.limit < 1) return { ok: false, errcode: 'M_INVALID_PARAM', error: 'limit must be a positive integer', status: 400 };
    if (!Number.isInteger(command.atOrBelowDepth) || command.atOrBelowDepth < 0) return { ok: false, errcode: 'M_INVALID_PARAM', error: 'atOrBelowDepth must be a non-negative integer', status: 400 };
    const rules = roomVersionRules(room.roomVersion);
    return this.locks.run(command.roomId, () => this.backfill(command.roomId, command.atOrBelowDepth, Math.min(command.limit, MAX_LIMIT), rules));
  }

  /** Timeline events at or below `atOrBelowDepth` whose prev events are missing here or known only as outliers. */
  async backwardExtremities(roomId: string, atOrBelowDepth: number): Promise<BackwardExtremities> {
    const scanned = await this.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: atOrBelowDepth, limit: SCAN_LIMIT, excludeRejected: false });
    const byId = new Map(scanned.map((r) => [r.eventId, r]));
    const timeline = scanned.filter((r) => !r.outlier && r.status !== 'rejected');
    const outside = [...new Set(timeline.flatMap((r) => r.prevEventIds))].filter((id) => !byId.has(id));
    const more = await this.store.events.getMany(outside);
    const held = (id: string) => {
      const r = byId.get(id) ?? more.get(id);
      return r !== undefined && !r.outlier;
    };
    const extremities = timeline.filter((r) => r.prevEventIds.some((p) => !held(p))).sort((x, y) => x.depth - y.depth);
    const hasCreate = timeline.some((r) => r.type === 'm.room.create' && r.stateKey === '');
    return { eventIds: extremities.slice(0, MAX_FROM_EVENTS).map((r) => r.eventId), complete: hasCreate && extremities.length === 0 };
  }

  private async backfill(roomId: string, atOrBelowDepth: number, limit: number, rules: RoomVersionRules): Promise<BackfillReply> {
    const before = await this.backwardExtremities(roomId, atOrBelowDepth);
    if (before.eventIds.length === 0) return { ok: true, stored: 0, complete: before.complete };
    const servers = await this.serversToAsk(roomId, before.eventIds);
    const failures: string[] = [];
    for (const server of servers) {
      const started = Date.now();
      const path = `/_matrix/federation/v1/backfill/${roomId}`;
      try {
        const { pdus } = await this.api.backfill(server, roomId, before.eventIds, limit);
        const stored = await this.storeHistory(pdus, roomId, server, rules);
        const after = await this.backwardExtremities(roomId, atOrBelowDepth);
        return { ok: true, stored, complete: after.complete };
      } catch (err) {
        const reason = describeError(err);
        failures.push(`${server}: ${reason}`);
        await this.store.audit.append({
          direction: 'out',
          origin: this.serverName,
          destination: server,
          method: 'GET',
          path,
          ts: started,
          durationMs: Date.now() - started,
          status: 0,
          outcome: 'error',
          reason: 'backfill_failed',
          details: { roomId, from: before.eventIds, error: reason },
        });
      }
    }
    if (servers.length === 0) return { ok: true, stored: 0, complete: false };
    return { ok: false, errcode: 'M_UNKNOWN', error: `no server in the room answered backfill: ${failures.join('; ')}`, status: 502 };
  }

  /** Verifies and keeps a /backfill answer as history; returns how many events were new here. */
  private async storeHistory(pdus: readonly Record<string, unknown>[], roomId: string, server: string, rules: RoomVersionRules): Promise<number> {
    const path = `/_matrix/federation/v1/backfill/${roomId}`;
    const { valid, refused } = partitionRemoteEvents(await verifyRemoteEvents(this.keyRing, pdus, { roomVersion: rules, roomId }));
    await auditRefused(this.store, this.serverName, server, 'GET', path, refused);
    const inBatch = new Set(valid.map((v) => v.eventId));
    const held = await this.store.events.getMany(valid.map((v) => v.eventId));
    const fresh = valid.filter((v) => !held.has(v.eventId));
    const authIds = [...new Set(fresh.flatMap((v) => toRoomEvent(v.pdu, v.eventId).auth_events))].filter((id) => !inBatch.has(id));
    const missingAuth = new Set(await this.store.events.missing(authIds));
    // The auth chain of an event whose auth events are not held, kept as outliers first so the history can be authorized.
    const needingAuth = fresh.filter((v) => toRoomEvent(v.pdu, v.eventId).auth_events.some((a) => missingAuth.has(a)));
    for (const v of needingAuth.slice(0, MAX_AUTH_FETCHES)) {
      if (!toRoomEvent(v.pdu, v.eventId).auth_events.some((a) => missingAuth.has(a))) continue;
      const chain = await this.api.eventAuth(server, roomId, v.eventId);
      const { imported, refused: refusedAuth } = await this.importer.import(chain, rules, roomId);
      await auditRefused(this.store, this.serverName, server, 'GET', `/_matrix/federation/v1/event_auth/${roomId}/${v.eventId}`, refusedAuth);
      for (const id of imported) missingAuth.delete(id);
    }
    await this.importer.import(
      valid.map((v) => v.pdu),
      rules,
      roomId,
      undefined,
      { history: true },
    );
    return fresh.length;
  }

  /** Servers joined to the room (not this one), the servers that sent the backward extremities first. */
  private async serversToAsk(roomId: string, extremityIds: readonly string[]): Promise<string[]> {
    const joined = (await this.store.rooms.getJoinedServers(roomId)).filter((s) => s !== this.serverName);
    const records: Map<string, EventRecord> = await this.store.events.getMany([...extremityIds]);
    const senders = [...records.values()].map((r) => domainOf(r.pdu.sender)).filter((s) => s !== this.serverName && joined.includes(s));
    return [...new Set([...senders, ...joined])];
  }
}
