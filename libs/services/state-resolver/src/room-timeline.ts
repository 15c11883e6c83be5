// The one path every event into a room takes, whoever made it: state before it (resolved over its prev
// events), the auth checks, soft-fail, then persistence, forward extremities, current state, joined
// servers and the room log entry. Callers hold the room's lock.
import type { Bus, BusTopology, EventOutcome, JsonObject as BusJson, RoomLogEntry } from '@fedgate/bus';
import { byteLimitViolation, computeRoomIdFromCreateEvent, type Pdu, type RoomVersionRules } from '@fedgate/protocol';
import {
  authStateFromMap,
  authTypesForEvent,
  authorizeByAuthEvents,
  authorizeEvent,
  checkSoftFail,
  createEventIdForRoom,
  domainOf,
  ForeignEventError,
  isStateEvent,
  resolveState,
  stateMapKey,
  type RoomEvent,
  type StateMap,
} from '@fedgate/room-state';
import type { EventRecord, EventStatus, Store } from '@fedgate/store';
import { MissingStateError } from './errors';
import { EventGraph } from './event-graph';
import { RedactionApplier } from './redactions';
import { stateDelta, toRoomStateMap, toStoreStateMap } from './state-keys';

export interface Evaluation {
  eventId: string;
  roomId: string;
  pdu: Pdu;
  event: RoomEvent;
  rules: RoomVersionRules;
  /** State before the event and its snapshot (null until saved). */
  before: Map<string, string>;
  beforeSnapshotId: string | null;
  /** Snapshot of the first prev event's state, the base for saving a resolved state. */
  baseSnapshotId: string | null;
  status: EventStatus;
  reason?: string;
  graph: EventGraph;
}

export interface CommitOptions {
  /** Whether this server sends it to the room (created here, or accepted through our make/send handshake). */
  local: boolean;
  /** Extra fields for the room log's copy of the event (e.g. unsigned.invite_room_state). */
  unsigned?: BusJson;
}

export interface Committed {
  eventId: string;
  roomId: string;
  status: EventStatus;
  reason?: string;
  entry: RoomLogEntry;
}

const OUTCOME: Record<EventStatus, EventOutcome> = { accepted: 'accepted', soft_failed: 'soft-failed', rejected: 'rejected' };

export function roomIdOf(pdu: Pdu, rules: RoomVersionRules): string {
  if (rules.roomIdFromCreateEvent && pdu.type === 'm.room.create' && pdu.state_key === '') return computeRoomIdFromCreateEvent(pdu, rules);
  return pdu.room_id as string;
}

export function recordFor(eventId: string, roomId: string, pdu: Pdu, event: RoomEvent, status: EventStatus, reason: string | undefined, outlier: boolean): EventRecord {
  return {
    eventId,
    roomId,
    type: event.type,
    stateKey: event.state_key,
    depth: typeof pdu.depth === 'number' ? pdu.depth : 0,
    prevEventIds: [...event.prev_events],
    authEventIds: [...event.auth_events],
    pdu,
    status,
    reason,
    outlier,
    receivedTs: Date.now(),
  };
}

/** The copy of an event carried on the room log and shown to clients: with its ID and room ID. */
export function logEventOf(eventId: string, roomId: string, pdu: Pdu, unsigned?: BusJson): BusJson {
  const event: BusJson = { ...pdu, event_id: eventId, room_id: roomId };
  if (unsigned) event.unsigned = { ...((pdu.unsigned as BusJson | undefined) ?? {}), ...unsigned };
  return event;
}

export class RoomTimeline {
  private readonly redactions: RedactionApplier;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly topology: BusTopology,
  ) {
    this.redactions = new RedactionApplier(store);
  }

  /** Whether the event went through this path already (its state refs are written last). */
  async isSettled(eventId: string): Promise<boolean> {
    return (await this.store.events.get(eventId)) !== undefined && (await this.store.state.getForEvent(eventId)) !== undefined;
  }

  /**
   * Authorizes an event against its auth events and against the state before it. Throws MissingStateError when
   * the state at some prev event is unknown. Nothing is written.
   */
  async evaluate(eventId: string, pdu: Pdu, rules: RoomVersionRules): Promise<Evaluation> {
    const graph = new EventGraph(this.store);
    const event = graph.add(eventId, pdu);
    const roomId = roomIdOf(pdu, rules);
    const prevs = [...new Set(event.prev_events)];
    const foreign = await this.prevEventsOfOtherRooms(prevs, roomId);
    if (foreign.length > 0) {
      // Another room's events never stand for this room's state: the event is refused, with the reason kept.
      const reason = `prev_events of another room: ${foreign.map((r) => `${r.eventId} is in ${r.roomId}`).join(', ')}`;
      return { eventId, roomId, pdu, event, rules, before: new Map(), beforeSnapshotId: null, baseSnapshotId: null, status: 'rejected', reason, graph };
    }
    const refs = await Promise.all(prevs.map((p) => this.store.state.getForEvent(p)));
    const unknown = prevs.filter((_, i) => refs[i] === undefined);
    if (unknown.length > 0) throw new MissingStateError(unknown);

    let before: Map<string, string>;
    let beforeSnapshotId: string | null = null;
    const baseSnapshotId = refs[0]?.after ?? null;
    if (prevs.length === 0) before = new Map();
    else if (prevs.length === 1) {
      before = toRoomStateMap((await this.store.state.load(refs[0]!.after))!);
      beforeSnapshotId = refs[0]!.after;
    } else {
      const sets = await Promise.all(refs.map(async (r) => toRoomStateMap((await this.store.state.load(r!.after))!)));
      try {
        before = await this.resolve(sets, rules, graph, roomId);
      } catch (err) {
        if (!(err instanceof ForeignEventError)) throw err;
        return { eventId, roomId, pdu, event, rules, before: new Map(), beforeSnapshotId: null, baseSnapshotId, status: 'rejected', reason: `state before the event: ${err.message}`, graph };
      }
    }

    const evaluation: Evaluation = { eventId, roomId, pdu, event, rules, before, beforeSnapshotId, baseSnapshotId, status: 'accepted', graph };
    const tooLong = byteLimitViolation(pdu, rules);
    if (tooLong) return { ...evaluation, status: 'rejected', reason: tooLong };
    await graph.load([...event.auth_events, ...(rules.roomIdFromCreateEvent && roomId ? [createEventIdForRoom(roomId)] : [])]);
    const byAuthEvents = authorizeByAuthEvents(event, graph.lookup, rules, graph.isRejected);
    if (!byAuthEvents.allowed) return { ...evaluation, status: 'rejected', reason: `auth events: ${byAuthEvents.reason.message}` };
    await this.loadAuthState(graph, event, before, rules);
    const byState = authorizeEvent(event, authStateFromMap(before, graph.lookup, roomId), rules);
    if (!byState.allowed) return { ...evaluation, status: 'rejected', reason: `state before the event: ${byState.reason.message}` };
    return evaluation;
  }

  private async prevEventsOfOtherRooms(prevs: readonly string[], roomId: string): Promise<EventRecord[]> {
    const records = await this.store.events.getMany([...prevs]);
    return [...records.values()].filter((r) => r.roomId !== roomId);
  }

  /** Check against the room's current state; a failure soft-fails the event. */
  async softFail(evaluation: Evaluation): Promise<Evaluation> {
    if (evaluation.status !== 'accepted') return evaluation;
    const current = await this.currentState(evaluation.roomId);
    if (!current) return evaluation;
    await this.loadAuthState(evaluation.graph, evaluation.event, current, evaluation.rules);
    const verdict = checkSoftFail(evaluation.event, current, evaluation.graph.lookup, evaluation.rules);
    return verdict.allowed ? evaluation : { ...evaluation, status: 'soft_failed', reason: `current state: ${verdict.reason.message}` };
  }

  async currentState(roomId: string): Promise<Map<string, string> | undefined> {
    const room = await this.store.rooms.get(roomId);
    if (!room?.currentStateId) return undefined;
    const state = await this.store.state.load(room.currentStateId);
    return state && toRoomStateMap(state);
  }

  /** Persists the evaluated event with its outcome and moves the room on; publishes the room log entry. */
  async commit(evaluation: Evaluation, options: CommitOptions): Promise<Committed> {
    const { eventId, roomId, pdu, event, rules, status, reason } = evaluation;
    const beforeId = evaluation.beforeSnapshotId ?? (await this.store.state.save(roomId, toStoreStateMap(evaluation.before), evaluation.baseSnapshotId));
    const changesState = status !== 'rejected' && isStateEvent(event);
    const afterId = changesState ? await this.store.state.derive(roomId, beforeId, [{ type: event.type, stateKey: event.state_key!, eventId }]) : beforeId;

    const record = recordFor(eventId, roomId, pdu, event, status, reason, false);
    const { inserted } = await this.store.events.append(record);
    if (!inserted) await this.store.events.setOutcome(eventId, { status, reason, outlier: false });

    let delta: Record<string, string | null> = {};
    if (status === 'accepted') {
      if (event.type === 'm.room.create' && event.state_key === '') {
        const creator = rules.creatorIsSender ? event.sender : typeof event.content.creator === 'string' ? event.content.creator : event.sender;
        await this.store.rooms.ensure({ roomId, roomVersion: rules.id, creator, createdTs: event.origin_server_ts });
      }
      await this.store.rooms.updateForwardExtremities(roomId, { add: [eventId], remove: await this.coveredBy(event.prev_events) });
      delta = await this.updateCurrentState(roomId, eventId, afterId, rules, evaluation.graph);
    }
    const entry: RoomLogEntry = {
      eventId,
      roomId,
      outcome: OUTCOME[status],
      local: options.local,
      event: logEventOf(eventId, roomId, pdu, await this.withReplacedState(evaluation, options.unsigned)),
      stateDelta: delta,
      joinedServers: await this.store.rooms.getJoinedServers(roomId),
    };
    await this.publish(entry);
    await this.store.state.setForEvent(eventId, { before: beforeId, after: afterId });
    // After the state refs: the redact power check reads the state before the redaction.
    if (status === 'accepted') await this.redactions.onAccepted(eventId, roomId, pdu, rules);
    return { eventId, roomId, status, reason, entry };
  }

  /**
   * The extremities an accepted event makes obsolete: its prev events, and through any of them that were
   * rejected or soft-failed (never extremities themselves), what those were built on.
   */
  private async coveredBy(prevEvents: readonly string[]): Promise<string[]> {
    const covered = new Set(prevEvents);
    let frontier: readonly string[] = prevEvents;
    for (let steps = 0; frontier.length > 0 && steps < 100; steps++) {
      const records = await this.store.events.getMany([...frontier]);
      const next: string[] = [];
      for (const record of records.values()) {
        if (record.status === 'accepted') continue;
        for (const parent of record.prevEventIds) {
          if (covered.has(parent)) continue;
          covered.add(parent);
          next.push(parent);
        }
      }
      frontier = next;
    }
    return [...covered];
  }

  /**
   * For a state event, what it replaces in the state before it (`replaces_state`, `prev_content`, `prev_sender`),
   * so the bridge can tell a profile change from a join. Only on the room log: egress sends events from the store.
   */
  private async withReplacedState(evaluation: Evaluation, unsigned: BusJson | undefined): Promise<BusJson | undefined> {
    const { event, before } = evaluation;
    const replacedId = isStateEvent(event) ? before.get(stateMapKey(event.type, event.state_key!)) : undefined;
    const replaced = replacedId === undefined || replacedId === evaluation.eventId ? undefined : await this.store.events.get(replacedId);
    if (!replaced) return unsigned;
    const pdu = replaced.pdu as { content?: unknown; sender?: unknown };
    return { replaces_state: replaced.eventId, prev_content: (pdu.content ?? {}) as BusJson, prev_sender: String(pdu.sender), ...unsigned };
  }

  async publish(entry: RoomLogEntry): Promise<void> {
    // A rejection gets its own message ID: an event rejected for want of its auth events and accepted when sent
    // again must not have its accepted entry deduplicated against the rejected one.
    const messageId = entry.outcome === 'rejected' ? `${entry.eventId}:rejected` : entry.eventId;
    await this.bus.publish(this.topology.roomLog.subjectFor(entry.roomId), entry, { messageId });
  }

  /**
   * Sets the room's current state to the resolved state of its forward extremities, and the joined servers
   * when membership changed. Returns the change to current state.
   */
  async updateCurrentState(roomId: string, newEventId: string, newAfterId: string, rules: RoomVersionRules, graph: EventGraph): Promise<Record<string, string | null>> {
    const room = await this.store.rooms.get(roomId);
    const old = room?.currentStateId ? toRoomStateMap((await this.store.state.load(room.currentStateId))!) : new Map<string, string>();
    const extremities = await this.store.rooms.getForwardExtremities(roomId);
    let currentId = newAfterId;
    let current: Map<string, string>;
    const others = extremities.filter((id) => id !== newEventId);
    const otherRefs = (await Promise.all(others.map((id) => this.store.state.getForEvent(id)))).filter((r) => r !== undefined);
    const newState = toRoomStateMap((await this.store.state.load(newAfterId))!);
    if (otherRefs.length === 0) current = newState;
    else {
      const sets = [newState, ...(await Promise.all(otherRefs.map(async (r) => toRoomStateMap((await this.store.state.load(r.after))!))))];
      current = await this.resolve(sets, rules, graph, roomId);
      currentId = await this.store.state.save(roomId, toStoreStateMap(current), newAfterId);
    }
    await this.store.rooms.setCurrentState(roomId, currentId);
    const delta = stateDelta(old, current);
    const membershipChanged = !room?.currentStateId || Object.keys(delta).some((k) => k.startsWith('m.room.member\u0000'));
    if (membershipChanged) await this.store.rooms.setJoinedServers(roomId, await this.joinedServers(current, graph));
    return delta;
  }

  async joinedServers(state: StateMap, graph: EventGraph): Promise<string[]> {
    const memberIds: string[] = [];
    for (const [key, id] of state) if (key.startsWith('m.room.member\u0000')) memberIds.push(id);
    await graph.load(memberIds);
    const servers = new Set<string>();
    for (const id of memberIds) {
      const member = graph.lookup(id);
      if (member?.content.membership === 'join' && member.state_key) servers.add(domainOf(member.state_key));
    }
    return [...servers].sort();
  }

  async resolve(sets: Map<string, string>[], rules: RoomVersionRules, graph: EventGraph, roomId: string): Promise<Map<string, string>> {
    const ids = new Set<string>();
    for (const s of sets) for (const id of s.values()) ids.add(id);
    await graph.loadAuthClosure(ids, roomId);
    return resolveState(sets, { rules, lookup: graph.lookup, isRejected: graph.isRejected, roomId });
  }

  private async loadAuthState(graph: EventGraph, event: RoomEvent, state: StateMap, rules: RoomVersionRules): Promise<void> {
    const ids = authTypesForEvent(event, rules)
      .map((r) => state.get(stateMapKey(r.type, r.state_key)))
      .filter((id): id is string => id !== undefined);
    const createId = state.get(stateMapKey('m.room.create', ''));
    if (createId) ids.push(createId);
    await graph.load(ids);
  }
}
