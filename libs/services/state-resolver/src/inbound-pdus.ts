// Inbound PDUs, one room partition at a time: fill gaps in the DAG from the origin, then the timeline path.
import { ack, nak, term, type HandlerOutcome, type InboundPdu, type JsonObject as BusJson, type ReceivedMessage } from '@fedgate/bus';
import {
  FederationApi,
  FederationClientError,
  FederationHttpError,
  partitionRemoteEvents,
  verifyRemoteEvents,
  wireForm,
  type AcceptedRemoteEvent,
  type KeyRing,
} from '@fedgate/federation-client';
import { roomVersionRules, type Pdu, type RoomVersionRules } from '@fedgate/protocol';
import { createEventIdForRoom, stateMapKey, toRoomEvent, topologicalOrder, type RoomEvent } from '@fedgate/room-state';
import type { Store } from '@fedgate/store';
import { describeError, MissingStateError, PoisonMessageError } from './errors';
import { EventGraph } from './event-graph';
import { OutOfBandMembership } from './out-of-band-membership';
import { OutlierImporter } from './outliers';
import type { PolicyServerSignatures } from './policy-server-signatures';
import { auditRefused } from './refused-events';
import { RemoteIoNeeded } from './remote-budget';
import type { RoomLocks } from './room-locks';
import { RoomTimeline, type Committed } from './room-timeline';
import { fetchStateAt } from './state-at-fetch';
import { toStoreStateMap } from './state-keys';

export interface GapFillLimits {
  /** get_missing_events rounds per inbound event. */
  maxRounds: number;
  /** Events fetched through get_missing_events per inbound event. */
  maxEvents: number;
  /** Above this many unknown state/auth events, /state is asked instead of /event for each. */
  maxSingleFetches: number;
}

export const DEFAULT_GAP_FILL_LIMITS: GapFillLimits = { maxRounds: 10, maxEvents: 100, maxSingleFetches: 50 };

const CREATE_KEY = stateMapKey('m.room.create', '');

/** The reason prefix of an event rejected because its auth events could not be had; such an event is evaluated again when received again. */
export const AUTH_EVENTS_UNAVAILABLE = 'auth_events_unavailable';

const TRANSIENT = new Set(['UNREACHABLE', 'TIMEOUT', 'TLS_FAILURE', 'DNS_FAILURE']);

/** Remote trouble that may pass (retry later) versus an answer that will not change (give up with the reason). */
export function isTransient(err: unknown): boolean {
  if (err instanceof FederationHttpError) return err.status >= 500 || err.status === 429;
  if (err instanceof FederationClientError) return TRANSIENT.has(err.code);
  return false;
}

/** Which of `ids` the store does not hold; the records of those it holds are loaded into `graph`. */
async function unknownTo(graph: EventGraph, ids: readonly string[]): Promise<string[]> {
  await graph.load(ids);
  return ids.filter((id) => !graph.has(id));
}

/** What the evaluation of a live event reads first: its prev events, its auth events (and a v12 room's create event). */
function firstRead(event: RoomEvent, roomId: string, rules: RoomVersionRules): string[] {
  const ids = [...event.prev_events, ...event.auth_events];
  if (rules.roomIdFromCreateEvent && roomId.startsWith('!')) ids.push(createEventIdForRoom(roomId));
  return ids;
}

export class InboundPduHandler {
  private readonly importer: OutlierImporter;
  private readonly outOfBand: OutOfBandMembership;

  constructor(
    private readonly store: Store,
    private readonly timeline: RoomTimeline,
    private readonly locks: RoomLocks,
    private readonly keyRing: KeyRing,
    private readonly api: FederationApi,
    private readonly serverName: string,
    private readonly limits: GapFillLimits = DEFAULT_GAP_FILL_LIMITS,
    /** The room's policy server: events without its valid signature are soft-failed (absent: not honoured). */
    private readonly policy?: PolicyServerSignatures,
  ) {
    this.importer = new OutlierImporter(store, keyRing);
    this.outOfBand = new OutOfBandMembership(store, timeline, serverName);
  }

  /** Bus handler: ack when persisted (whatever the outcome), nak with delay on transient remote trouble, term on poison. */
  async onMessage(message: ReceivedMessage<InboundPdu>): Promise<HandlerOutcome> {
    try {
      // With more of the run in hand, the room log entry waits to go out with the run's (the consumer flushes at its end).
      await this.handle(message.data, () => message.working(), undefined, message.moreInHand === true);
      return ack();
    } catch (err) {
      if (isTransient(err)) return nak(Math.min(60_000, 1_000 * 2 ** Math.min(message.deliveryCount, 6)));
      if (err instanceof PoisonMessageError || err instanceof FederationClientError) return term(`${message.data.eventId}: ${describeError(err)}`);
      throw err;
    }
  }

  /** `unsigned`: extra fields for the room log's copy of this event (not of the earlier events fetched for it). */
  async handle(inbound: InboundPdu, working: () => void = () => undefined, unsigned?: BusJson, deferRoomLog = false): Promise<Committed | undefined> {
    const room = await this.store.rooms.get(inbound.roomId);
    if (!room) {
      if (await this.outOfBand.rescind(inbound, wireForm(inbound.pdu, inbound.roomVersion))) return undefined;
      throw new PoisonMessageError(`room ${inbound.roomId} is not known here`);
    }
    const rules = roomVersionRules(room.roomVersion);
    let pdu: Pdu;
    let event: RoomEvent;
    try {
      pdu = wireForm(inbound.pdu, rules.id);
      event = toRoomEvent(pdu, inbound.eventId);
    } catch (err) {
      throw new PoisonMessageError(`malformed PDU: ${describeError(err)}`);
    }
    return this.locks.run(inbound.roomId, async () => {
      await this.timeline.recover(inbound.roomId);
      if (await this.settledForGood(inbound.eventId)) return undefined;
      // The records read to find what is missing (prev and auth events) are the ones the evaluation needs.
      const graph = new EventGraph(this.store);
      // Prev and auth events in one read (issue 19: one read each before); what it does not find is asked again below.
      await graph.load(firstRead(event, inbound.roomId, rules));
      const fetched = await this.fetchMissing(inbound.eventId, pdu, inbound.roomId, inbound.origin, rules, graph);
      working();
      for (const earlier of fetched) {
        if (await this.timeline.isSettled(earlier.eventId)) continue;
        await this.processOne(earlier.eventId, earlier.pdu, inbound.roomId, inbound.origin, rules);
        working();
      }
      return this.processOne(inbound.eventId, pdu, inbound.roomId, inbound.origin, rules, unsigned, deferRoomLog, graph);
    });
  }

  /** Events between our forward extremities and `pdu`, via get_missing_events, parents first. */
  private async fetchMissing(eventId: string, pdu: Pdu, roomId: string, origin: string, rules: RoomVersionRules, graph: EventGraph): Promise<AcceptedRemoteEvent[]> {
    const fetched = new Map<string, AcceptedRemoteEvent>();
    const prevsOf = (p: Pdu, id: string) => toRoomEvent(p, id).prev_events;
    let frontier: Array<{ id: string; pdu: Pdu }> = [{ id: eventId, pdu }];
    for (let round = 0; round < this.limits.maxRounds && fetched.size < this.limits.maxEvents; round++) {
      const wanted = [...new Set(frontier.flatMap((f) => prevsOf(f.pdu, f.id)))].filter((id) => !fetched.has(id));
      const unknown = round === 0 ? await unknownTo(graph, wanted) : await this.store.events.missing(wanted);
      if (unknown.length === 0) break;
      const waiting = frontier.filter((f) => prevsOf(f.pdu, f.id).some((p) => unknown.includes(p))).map((f) => f.id);
      const earliest = await this.store.rooms.getForwardExtremities(roomId);
      const events = await this.api.getMissingEvents(origin, roomId, {
        earliest_events: earliest,
        latest_events: waiting,
        limit: this.limits.maxEvents - fetched.size,
      });
      const { valid, refused } = partitionRemoteEvents(await verifyRemoteEvents(this.keyRing, events, { roomVersion: rules, roomId }));
      await auditRefused(this.store, this.serverName, origin, 'POST', `/_matrix/federation/v1/get_missing_events/${roomId}`, refused);
      const fresh = valid.filter((v) => !fetched.has(v.eventId) && v.eventId !== eventId);
      if (fresh.length === 0) break;
      for (const v of fresh) fetched.set(v.eventId, v);
      frontier = fresh.map((v) => ({ id: v.eventId, pdu: v.pdu }));
    }
    const byId = new Map([...fetched.values()].map((v) => [v.eventId, v]));
    return topologicalOrder([...fetched.values()].map((v) => toRoomEvent(v.pdu, v.eventId))).map((e) => byId.get(e.event_id)!);
  }

  /**
   * Settled, unless it was rejected only because its auth events could not be had: a copy sent again (the origin
   * resends it, or another server does) is evaluated again, now that they may be known ("unrejecting").
   */
  private async settledForGood(eventId: string): Promise<boolean> {
    if (!(await this.timeline.isSettled(eventId))) return false;
    const record = await this.store.events.get(eventId);
    return !(record?.status === 'rejected' && record.reason?.startsWith(AUTH_EVENTS_UNAVAILABLE));
  }

  private async processOne(eventId: string, pdu: Pdu, roomId: string, origin: string, rules: RoomVersionRules, unsigned?: BusJson, deferRoomLog = false, graph = new EventGraph(this.store)): Promise<Committed> {
    const unavailable = await this.fetchAuthEvents(origin, roomId, eventId, pdu, rules, graph);
    let evaluation;
    try {
      // Auth events fetched and imported just now: the evaluation reads them afresh.
      evaluation = await this.timeline.evaluate(eventId, pdu, rules, { graph: unavailable ? undefined : graph });
    } catch (err) {
      if (!(err instanceof MissingStateError)) throw err;
      for (const prev of err.eventIds) await this.fetchStateAt(origin, roomId, prev, rules);
      evaluation = await this.timeline.evaluate(eventId, pdu, rules);
    }
    const stillUnknown = unavailable && (await this.store.events.missing(unavailable.ids));
    if (evaluation.status === 'rejected' && stillUnknown && stillUnknown.length > 0) {
      evaluation = { ...evaluation, reason: `${AUTH_EVENTS_UNAVAILABLE}: ${stillUnknown.join(', ')} not known here and not served by ${origin} (${unavailable.why}); ${evaluation.reason}` };
    }
    // Current state is loaded once for both checks against it.
    // (and handed to the commit, which builds on it: issue 19).
    const current = evaluation.status === 'accepted' ? await this.timeline.currentStateWithId(roomId) : undefined;
    const softFailed = await this.timeline.softFail(evaluation, current);
    return this.timeline.commit(this.policy ? await this.policy.softFailUnsigned(softFailed, current?.state) : softFailed, { local: false, unsigned, deferRoomLog });
  }

  /**
   * A live event naming auth events we do not hold: its auth chain from the origin (/event_auth), verified,
   * authorized and kept as outliers, so it is judged on them rather than rejected as unknown. Transient trouble
   * is thrown (the message is retried); a refusal leaves the event to be judged on what is known, with the reason.
   */
  private async fetchAuthEvents(origin: string, roomId: string, eventId: string, pdu: Pdu, rules: RoomVersionRules, graph: EventGraph): Promise<{ ids: string[]; why: string } | undefined> {
    const missing = await unknownTo(graph, [...new Set(toRoomEvent(pdu, eventId).auth_events)]);
    if (missing.length === 0) return undefined;
    const path = `/_matrix/federation/v1/event_auth/${roomId}/${eventId}`;
    let chain: Record<string, unknown>[];
    try {
      chain = await this.api.eventAuth(origin, roomId, eventId);
    } catch (err) {
      // On the partition path no remote call is made: the PDU is parked and asks again there.
      if (isTransient(err) || err instanceof RemoteIoNeeded) throw err;
      return { ids: missing, why: `event_auth: ${describeError(err)}` };
    }
    const { refused } = await this.importer.import(chain, rules, roomId);
    await auditRefused(this.store, this.serverName, origin, 'GET', path, refused);
    return { ids: missing, why: refused.length > 0 ? `event_auth answer refused in part: ${refused.map((r) => r.reason).join('; ')}` : 'absent from its event_auth answer' };
  }

  private async roomCreateId(roomId: string, rules: RoomVersionRules): Promise<string | undefined> {
    if (rules.roomIdFromCreateEvent) return createEventIdForRoom(roomId);
    return (await this.timeline.currentState(roomId))?.get(CREATE_KEY);
  }

  /** The state at an event we do not hold in the timeline: /state_ids (+ /event or /state), kept as outliers. */
  async fetchStateAt(origin: string, roomId: string, eventId: string, rules: RoomVersionRules): Promise<void> {
    const deps = { api: this.api, store: this.store, importer: this.importer, serverName: this.serverName, maxSingleFetches: this.limits.maxSingleFetches };
    const { stateIds, graph, foreign } = await fetchStateAt(deps, origin, roomId, eventId, rules, true);
    const prev = graph.lookup(eventId);
    if (!prev || foreign.includes(eventId)) throw new PoisonMessageError(`${origin} did not give a valid ${eventId} of room ${roomId}`);
    const before = OutlierImporter.stateFrom(stateIds, graph, roomId);
    const createId = await this.roomCreateId(roomId, rules);
    if (createId === undefined || before.get(CREATE_KEY) !== createId) {
      throw new PoisonMessageError(`${origin}'s state at ${eventId} does not hold the room's create event ${String(createId)} (it names ${String(before.get(CREATE_KEY))})`);
    }
    const after = new Map(before);
    if (prev.state_key !== undefined && !graph.isRejected(eventId)) after.set(`${prev.type}\u0000${prev.state_key}`, eventId);
    const beforeId = await this.store.state.save(roomId, toStoreStateMap(before));
    const afterId = await this.store.state.save(roomId, toStoreStateMap(after), beforeId);
    await this.store.state.setForEvent(eventId, { before: beforeId, after: afterId });
  }
}
