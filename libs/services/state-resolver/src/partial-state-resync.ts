// A room joined with partial state (send_join with omit_members) is in use at once; this fetches its full
// state in the background: /state_ids at our join (then the events we lack, one by one or with /state),
// verified and kept as outliers; the members the resident named join the state before our join; every event
// since our join is checked again against the state now known (one that fails is rejected with the reason
// kept: it was accepted only because the members were missing); then current state and joined servers are
// computed again and the room stops being partial. Each step can be repeated, and the partial-state record
// goes last: a restart halfway resumes the resync.
import { FederationApi, type KeyRing } from '@fedgate/federation-client';
import { roomVersionRules, type RoomVersionRules } from '@fedgate/protocol';
import { isStateEvent, stateMapKey, toRoomEvent } from '@fedgate/room-state';
import type { EventRecord, PartialStateRoom, Store } from '@fedgate/store';
import { describeError, MissingStateError } from './errors';
import { EventGraph } from './event-graph';
import { OutlierImporter } from './outliers';
import type { RoomLocks } from './room-locks';
import type { RoomTimeline } from './room-timeline';
import { fetchStateAt } from './state-at-fetch';
import { toRoomStateMap, toStoreStateMap } from './state-keys';

const CREATE_KEY = stateMapKey('m.room.create', '');
const MEMBER_PREFIX = 'm.room.member\u0000';

export interface ResyncLimits {
  /** Above this many events we lack, one /state call instead of one /event per event. */
  maxSingleFetches: number;
  /** Delay before the first retry after every server failed; doubled up to `maxRetryDelayMs`. */
  retryDelayMs: number;
  maxRetryDelayMs: number;
}

export const DEFAULT_RESYNC_LIMITS: ResyncLimits = { maxSingleFetches: 50, retryDelayMs: 2_000, maxRetryDelayMs: 5 * 60_000 };

/** What one resync did: the events re-checked, and those the full state rejected (with why). */
export interface ResyncOutcome {
  roomId: string;
  server: string;
  members: number;
  rechecked: number;
  rejected: Array<{ eventId: string; reason: string }>;
}

export class ResyncFailed extends Error {
  constructor(readonly roomId: string, readonly failures: string[]) {
    super(`full state of ${roomId} not fetched: ${failures.join('; ')}`);
    this.name = 'ResyncFailed';
  }
}

export class PartialStateResync {
  private readonly importer: OutlierImporter;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Map<string, Promise<ResyncOutcome | undefined>>();
  private readonly attempts = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly timeline: RoomTimeline,
    private readonly locks: RoomLocks,
    keyRing: KeyRing,
    private readonly api: FederationApi,
    private readonly serverName: string,
    private readonly limits: ResyncLimits = DEFAULT_RESYNC_LIMITS,
    private readonly onFailure: (err: unknown) => void = () => undefined,
    private readonly onResynced: (outcome: ResyncOutcome) => void = () => undefined,
  ) {
    this.importer = new OutlierImporter(store, keyRing);
  }

  /** Starts (or resumes) the resync of every partial room `owns` says is ours, in the background. */
  async resumeAll(owns: (roomId: string) => boolean): Promise<string[]> {
    const rooms = (await this.store.partialStateRooms.list()).map((r) => r.roomId).filter(owns);
    for (const roomId of rooms) this.start(roomId);
    return rooms;
  }

  /** Starts the room's resync in the background, retried with backoff until it is done or `stop()`. */
  start(roomId: string, delayMs = 0): void {
    if (this.stopped || this.timers.has(roomId) || this.running.has(roomId)) return;
    const timer = setTimeout(() => {
      this.timers.delete(roomId);
      void this.resync(roomId).then(
        (outcome) => {
          this.attempts.delete(roomId);
          if (outcome) this.onResynced(outcome);
        },
        (err) => {
          this.onFailure(err);
          const n = (this.attempts.get(roomId) ?? 0) + 1;
          this.attempts.set(roomId, n);
          this.start(roomId, Math.min(this.limits.retryDelayMs * 2 ** (n - 1), this.limits.maxRetryDelayMs));
        },
      );
    }, delayMs);
    timer.unref();
    this.timers.set(roomId, timer);
  }

  /** The resync under way (or a new one): resolves when the room's full state is in, undefined if the room was not partial. */
  resync(roomId: string): Promise<ResyncOutcome | undefined> {
    const under = this.running.get(roomId);
    if (under) return under;
    const work = this.run(roomId).finally(() => this.running.delete(roomId));
    this.running.set(roomId, work);
    return work;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private async run(roomId: string): Promise<ResyncOutcome | undefined> {
    const partial = await this.store.partialStateRooms.get(roomId);
    if (!partial) return undefined;
    const [room, join, refs] = await Promise.all([this.store.rooms.get(roomId), this.store.events.get(partial.joinEventId), this.store.state.getForEvent(partial.joinEventId)]);
    if (!room || !join || join.outlier || !refs) {
      // The join never entered the room (cut short before its commit): nothing here is partial.
      await this.store.partialStateRooms.finish(roomId);
      return undefined;
    }
    const rules = roomVersionRules(room.roomVersion);
    const servers = [...new Set([partial.resident, ...partial.serversInRoom])].filter((s) => s !== this.serverName);
    const failures: string[] = [];
    for (const server of servers) {
      let members: Map<string, string>;
      try {
        members = await this.membersFrom(server, partial, rules, toRoomStateMap((await this.store.state.load(refs.before))!));
      } catch (err) {
        failures.push(`${server}: ${describeError(err)}`);
        continue;
      }
      return this.locks.run(roomId, () => this.apply(partial, join, rules, members, server));
    }
    throw new ResyncFailed(roomId, failures.length > 0 ? failures : ['no other server in the room to ask']);
  }

  /**
   * The membership events of the state before our join, as `server` tells it: every event verified, checked
   * against its own auth events, of this room; an answer without the room's create event, or naming another
   * one, is refused whole. Only member keys the partial state lacks are taken.
   */
  private async membersFrom(server: string, partial: PartialStateRoom, rules: RoomVersionRules, before: Map<string, string>): Promise<Map<string, string>> {
    const { roomId, joinEventId } = partial;
    const deps = { api: this.api, store: this.store, importer: this.importer, serverName: this.serverName, maxSingleFetches: this.limits.maxSingleFetches };
    const { stateIds, graph, path } = await fetchStateAt(deps, server, roomId, joinEventId, rules, false);
    const full = OutlierImporter.stateFrom(stateIds, graph, roomId);
    if (full.get(CREATE_KEY) !== before.get(CREATE_KEY)) {
      const reason = `its state at ${joinEventId} names the create event ${String(full.get(CREATE_KEY))}, not the room's ${String(before.get(CREATE_KEY))}`;
      await this.store.audit.append({ direction: 'out', origin: this.serverName, destination: server, method: 'GET', path, ts: Date.now(), durationMs: 0, status: 200, outcome: 'rejected', reason: 'state_answer_refused', details: { roomId, error: reason } });
      throw new Error(reason);
    }
    const members = new Map<string, string>();
    for (const [key, id] of full) if (key.startsWith(MEMBER_PREFIX) && !before.has(key)) members.set(key, id);
    return members;
  }

  /** Under the room's lock: the full state before our join, every later event checked again, then current state. */
  private async apply(partial: PartialStateRoom, join: EventRecord, rules: RoomVersionRules, members: Map<string, string>, server: string): Promise<ResyncOutcome> {
    const { roomId } = partial;
    const refs = (await this.store.state.getForEvent(join.eventId))!;
    const before = toRoomStateMap((await this.store.state.load(refs.before))!);
    for (const [key, id] of members) before.set(key, id);
    const beforeId = await this.store.state.save(roomId, toStoreStateMap(before), refs.before);
    const afterId = await this.store.state.derive(roomId, beforeId, [{ type: 'm.room.member', stateKey: join.stateKey!, eventId: join.eventId }]);
    await this.store.state.setForEvent(join.eventId, { before: beforeId, after: afterId });

    const outcome: ResyncOutcome = { roomId, server, members: members.size, rechecked: 0, rejected: [] };
    for (const record of await this.eventsSince(join)) {
      outcome.rechecked++;
      let evaluation;
      try {
        evaluation = await this.timeline.evaluate(record.eventId, record.pdu, rules, { fullState: true });
      } catch (err) {
        if (err instanceof MissingStateError) continue; // not built on our join's state: nothing to check again
        throw err;
      }
      const status = record.status === 'accepted' && evaluation.status !== 'accepted' ? 'rejected' : record.status;
      const event = toRoomEvent(record.pdu, record.eventId);
      const eventBefore = await this.store.state.save(roomId, toStoreStateMap(evaluation.before), evaluation.baseSnapshotId);
      const eventAfter = status !== 'rejected' && isStateEvent(event) ? await this.store.state.derive(roomId, eventBefore, [{ type: event.type, stateKey: event.state_key!, eventId: record.eventId }]) : eventBefore;
      await this.store.state.setForEvent(record.eventId, { before: eventBefore, after: eventAfter });
      if (status !== record.status) {
        const reason = `re-checked against the full state (partial-state join): ${evaluation.reason ?? 'not allowed'}`;
        await this.store.events.setOutcome(record.eventId, { status, reason, outlier: false });
        outcome.rejected.push({ eventId: record.eventId, reason });
        await this.replaceExtremity(roomId, record);
      }
    }

    const extremities = await this.store.rooms.getForwardExtremities(roomId);
    const head = extremities[0] ?? join.eventId;
    const headAfter = (await this.store.state.getForEvent(head))?.after ?? afterId;
    await this.timeline.updateCurrentState(roomId, head, headAfter, rules, new EventGraph(this.store), { fullState: true });
    await this.store.partialStateRooms.finish(roomId);
    return outcome;
  }

  /** A rejected event stops being a forward extremity; its accepted prev events stand in for it. */
  private async replaceExtremity(roomId: string, record: EventRecord): Promise<void> {
    const extremities = await this.store.rooms.getForwardExtremities(roomId);
    if (!extremities.includes(record.eventId)) return;
    const prevs = [...(await this.store.events.getMany(record.prevEventIds)).values()].filter((p) => p.status === 'accepted' && !p.outlier).map((p) => p.eventId);
    await this.store.rooms.updateForwardExtremities(roomId, { add: prevs, remove: [record.eventId] });
  }

  /** The room's timeline events from our join's depth on, in an order where prev events come first (depth, then arrival). */
  private async eventsSince(join: EventRecord): Promise<EventRecord[]> {
    const extremities = [...(await this.store.events.getMany(await this.store.rooms.getForwardExtremities(join.roomId))).values()];
    const deepest = Math.max(join.depth, ...extremities.map((e) => e.depth));
    const found: EventRecord[] = [];
    const window = 100;
    for (let low = join.depth; low <= deepest; low += window) {
      found.push(...(await this.store.events.byDepthRange({ roomId: join.roomId, minDepth: low, maxDepth: low + window - 1, limit: 100_000, excludeRejected: false })));
    }
    return found.filter((e) => !e.outlier && e.eventId !== join.eventId && e.status !== 'rejected').sort((a, b) => a.depth - b.depth || a.receivedTs - b.receivedTs);
  }
}
