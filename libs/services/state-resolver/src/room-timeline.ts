// The one path every event into a room takes, whoever made it: state before it (resolved over its prev
// events), the auth checks, soft-fail, then persistence, forward extremities, current state, joined
// servers and the room log entry. Callers hold the room's lock.
//
// A commit is many writes to the store and one to the bus; any of them may fail, or the process may die
// between two. So a commit is recorded as pending before its first write and finished from that record
// (every step is idempotent) by whoever next works in the room, or by the repair on start: the state refs
// are written before the event can become a forward extremity, and the room log entry goes out once the
// room has moved on, then the record goes. The entries of a run of inbound PDUs may wait in the room's outbox
// and go out together, their records removed together (issue 19).
import { LRUCache } from 'lru-cache';
import type { Bus, BusTopology, EventOutcome, JsonObject as BusJson, RoomLogEntry } from '@fedgate/bus';
import { byteLimitViolation, computeRoomIdFromCreateEvent, roomVersionRules, type Pdu, type RoomVersionRules } from '@fedgate/protocol';
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
  toRoomEvent,
  type RoomEvent,
  type StateMap,
} from '@fedgate/room-state';
import { CommitFencedError, type CommitFence, type EventCommitWrites, type EventRecord, type EventStatus, type PendingCommit, type RoomWriteFence, type Store } from '@fedgate/store';
import type { ClientTransactionLog } from './client-transactions';
import { MissingStateError } from './errors';
import { EventGraph } from './event-graph';
import { ClaimedTargets } from './claimed-targets';
import { RedactionApplier, redactsOf } from './redactions';
import type { RunWrites } from './run-writes';
import { stateDelta, toRoomStateMap, toStoreStateMap } from './state-keys';

export interface Evaluation {
  eventId: string;
  roomId: string;
  pdu: Pdu;
  event: RoomEvent;
  rules: RoomVersionRules;
  /** State before the event and its snapshot (null until saved). */
  before: ReadonlyMap<string, string>;
  beforeSnapshotId: string | null;
  /** Snapshot of the first prev event's state, the base for saving a resolved state. */
  baseSnapshotId: string | null;
  status: EventStatus;
  reason?: string;
  graph: EventGraph;
  /** Whether the room was joined with partial state, once looked at. */
  partialState?: boolean;
  /** The current state the soft-fail check read (under the room's lock): the commit builds on it without reading it again. */
  current?: KnownCurrentState;
}

export interface CommitOptions {
  /** Whether this server sends it to the room (created here, or accepted through our make/send handshake). */
  local: boolean;
  /** Extra fields for the room log's copy of the event (e.g. unsigned.invite_room_state). */
  unsigned?: BusJson;
  /** The client transaction that asked for it: reserved for this event before the event enters the room. */
  txn?: { sender: string; txnId: string };
  /**
   * The room log entry may wait in the room's outbox, with its pending record, to go out with the room's next ones
   * (the partition consumer, while the bus hands it the rest of a run: issue 19): until the caller's `flushAll`, the
   * room's next commit or publish without this flag, or a backstop `OUTBOX_BACKSTOP_MS` later. A room's entries
   * keep their order.
   */
  deferRoomLog?: boolean;
}

/** What finishing a commit needs, kept in its pending record. */
interface CommitPayload {
  pdu: Pdu;
  roomVersion: string;
  status: EventStatus;
  reason?: string;
  local: boolean;
  unsigned?: BusJson;
  txn?: { sender: string; txnId: string };
  before: string;
  after: string;
}

/** The client transaction was taken by another event (an overlapping send of the same request): that one stands. */
export class ClientTransactionTaken extends Error {
  constructor(readonly existing: { eventId: string; roomId: string }) {
    super(`the client transaction belongs to ${existing.eventId}`);
    this.name = 'ClientTransactionTaken';
  }
}

/** What a repair did: the commits it finished, and those it dropped because their client transaction went to another event. */
export interface RepairOutcome {
  finished: string[];
  abandoned: string[];
}

export interface Committed {
  eventId: string;
  roomId: string;
  status: EventStatus;
  reason?: string;
  entry: RoomLogEntry;
}

/** A room's current state as read under its lock, with its snapshot: the commit that follows need not read it again. */
export interface KnownCurrentState {
  snapshotId: string;
  /** Shared (the converted snapshot cache's): never changed. */
  state: ReadonlyMap<string, string>;
}

/** Converted state snapshots kept, counted in state entries (a 10,000-member room's state is ~10,000). */
const ROOM_STATE_CACHE_ENTRIES = 100_000;

/** How long entries a cut-short run left in the outbox wait at most (a run's last message flushes them at once). */
export const OUTBOX_BACKSTOP_MS = 250;

interface OutboxItem {
  entry: RoomLogEntry;
  /** The event whose pending record is removed once the entry is out (none for an entry without a commit). */
  pendingEventId?: string;
}

/**
 * A rejection gets its own message ID: an event rejected for want of its auth events and accepted when sent again
 * must not have its accepted entry deduplicated against the rejected one.
 */
function roomLogMessageId(entry: RoomLogEntry): string {
  return entry.outcome === 'rejected' ? `${entry.eventId}:rejected` : entry.eventId;
}

const OUTCOME: Record<EventStatus, EventOutcome> = { accepted: 'accepted', soft_failed: 'soft-failed', rejected: 'rejected' };

/** The forward extremities once `change` is made, as the store makes it (what is added stays). */
function afterChange(extremities: readonly string[], change: { add: string[]; remove: string[] }): string[] {
  const removed = new Set(change.remove.filter((id) => !change.add.includes(id)));
  return [...new Set([...extremities.filter((id) => !removed.has(id)), ...change.add])];
}

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

/**
 * Elastic ownership: the fencing token a commit in the room carries (undefined when this replica does not hold
 * the room's partition: the commit is refused), and who hears of a refused commit (log, metric).
 */
export interface CommitFencing {
  fenceFor(roomId: string): CommitFence | undefined;
  refused(error: CommitFencedError): void;
}

export class RoomTimeline {
  private readonly redactions: RedactionApplier;
  /** Rooms that may hold a commit cut short in this process (or before it started): finished before the next work there. */
  private readonly unsettledRooms = new Set<string>();
  /** Room log entries not published yet, per room, in commit order; each with the event whose pending record goes once it is out. */
  private readonly outbox = new Map<string, OutboxItem[]>();
  /** Per room, the publish under way: the next one goes after it, so a room's entries keep their order. */
  private readonly publishing = new Map<string, Promise<void>>();
  private backstop: NodeJS.Timeout | undefined;
  /** State snapshots keyed as room-state keys them, by snapshot ID (content-addressed: they never change). */
  private readonly roomStates = new LRUCache<string, ReadonlyMap<string, string>>({ maxSize: ROOM_STATE_CACHE_ENTRIES, sizeCalculation: (state) => state.size + 1 });

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly topology: BusTopology,
    private readonly transactions?: ClientTransactionLog,
    private readonly fencing?: CommitFencing,
    /** Where a run's commits are held until its end (`store` must be its overlay): one store transaction per run. */
    private readonly runWrites?: RunWrites,
    /** No other process adds redaction claims to the store: which events they name is kept here (ClaimedTargets). */
    soleClaimWriter = false,
  ) {
    this.redactions = new RedactionApplier(store, soleClaimWriter ? new ClaimedTargets(store) : undefined);
  }

  /** Whether the event went through this path already; a commit of it cut short is finished first. The caller holds the room's lock. */
  async isSettled(eventId: string): Promise<boolean> {
    if (this.unsettledRooms.size > 0) {
      const pending = await this.store.pendingCommits.get(eventId);
      if (pending) await this.settlePending(pending.roomId);
    }
    return (await this.store.events.get(eventId)) !== undefined && (await this.store.state.getForEvent(eventId)) !== undefined;
  }

  /** Finishes the room's commits cut short, if this process saw one fail (or has not looked since it started). Under the room's lock. */
  async recover(roomId: string): Promise<RepairOutcome> {
    if (!this.unsettledRooms.has(roomId)) return { finished: [], abandoned: [] };
    return this.settlePending(roomId);
  }

  /** Rooms where a commit failed in this process and is not finished yet. */
  unsettled(): string[] {
    return [...this.unsettledRooms];
  }

  /** The rooms with commits under way in the store, all marked for recovery (the repair on start). */
  async roomsWithPendingCommits(): Promise<string[]> {
    const rooms = [...new Set((await this.store.pendingCommits.list()).map((c) => c.roomId))];
    for (const roomId of rooms) this.unsettledRooms.add(roomId);
    return rooms;
  }

  /** Finishes every pending commit of the room, oldest first. Under the room's lock. */
  async settlePending(roomId: string): Promise<RepairOutcome> {
    const outcome: RepairOutcome = { finished: [], abandoned: [] };
    this.unsettledRooms.add(roomId);
    // What waits in the outbox goes first (its records would be finished below anyway, at more cost).
    await this.flushRoom(roomId);
    for (const pending of await this.store.pendingCommits.list(roomId)) {
      try {
        await this.finish(pending.eventId, pending.roomId, pending.payload as unknown as CommitPayload, undefined, undefined, true);
        outcome.finished.push(pending.eventId);
      } catch (err) {
        if (!(err instanceof ClientTransactionTaken)) throw err;
        outcome.abandoned.push(pending.eventId);
      }
    }
    this.unsettledRooms.delete(roomId);
    return outcome;
  }

  /**
   * Authorizes an event against its auth events and against the state before it. Throws MissingStateError when
   * the state at some prev event is unknown. Nothing is written.
   */
  async evaluate(eventId: string, pdu: Pdu, rules: RoomVersionRules, options: { fullState?: boolean; graph?: EventGraph } = {}): Promise<Evaluation> {
    // A caller's graph holds records it read under the room's lock already (issue 19: read once, not twice).
    const graph = options.graph ?? new EventGraph(this.store);
    const event = graph.add(eventId, pdu);
    const roomId = roomIdOf(pdu, rules);
    const prevs = [...new Set(event.prev_events)];
    // The prev events' records stay in the graph: the commit's forward extremities need them again.
    await graph.load(prevs);
    const foreign = prevs.flatMap((id) => {
      const record = graph.record(id);
      return record && record.roomId !== roomId ? [record] : [];
    });
    if (foreign.length > 0) {
      // Another room's events never stand for this room's state: the event is refused, with the reason kept.
      const reason = `prev_events of another room: ${foreign.map((r) => `${r.eventId} is in ${r.roomId}`).join(', ')}`;
      return { eventId, roomId, pdu, event, rules, before: new Map(), beforeSnapshotId: null, baseSnapshotId: null, status: 'rejected', reason, graph };
    }
    const refs = await Promise.all(prevs.map((p) => this.store.state.getForEvent(p)));
    const unknown = prevs.filter((_, i) => refs[i] === undefined);
    if (unknown.length > 0) throw new MissingStateError(unknown);

    let before: ReadonlyMap<string, string>;
    let beforeSnapshotId: string | null = null;
    const baseSnapshotId = refs[0]?.after ?? null;
    if (prevs.length === 0) before = new Map();
    else if (prevs.length === 1) {
      before = (await this.roomState(refs[0]!.after))!;
      beforeSnapshotId = refs[0]!.after;
    } else {
      const sets = await Promise.all(refs.map(async (r) => (await this.roomState(r!.after))!));
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
    if (!options.fullState) evaluation.partialState = (await this.store.partialStateRooms.get(roomId)) !== undefined;
    const authState = options.fullState ? before : await this.withPartialMembers(evaluation, before);
    const byState = authorizeEvent(event, authStateFromMap(authState, graph.lookup, roomId), rules);
    if (!byState.allowed) return { ...evaluation, status: 'rejected', reason: `state before the event: ${byState.reason.message}` };
    return evaluation;
  }

  /**
   * In a room joined with partial state the members are missing from the state: an event is checked with the
   * membership events it names among its auth events standing in for the missing ones (re-checked against the
   * full state once it is in: partial-state-resync.ts). Any other room: the state as it is.
   */
  private async withPartialMembers(evaluation: Evaluation, state: ReadonlyMap<string, string>): Promise<ReadonlyMap<string, string>> {
    const { roomId, event, graph } = evaluation;
    evaluation.partialState ??= (await this.store.partialStateRooms.get(roomId)) !== undefined;
    if (!evaluation.partialState) return state;
    await graph.load(event.auth_events);
    let filled: Map<string, string> | undefined;
    for (const id of event.auth_events) {
      const member = graph.lookup(id);
      if (member?.type !== 'm.room.member' || member.state_key === undefined || graph.isRejected(id)) continue;
      const key = stateMapKey('m.room.member', member.state_key);
      if (state.has(key)) continue;
      filled ??= new Map(state);
      filled.set(key, id);
    }
    return filled ?? state;
  }

  /** Check against the room's current state (`current`, when the caller loaded it already); a failure soft-fails the event. */
  async softFail(evaluation: Evaluation, current?: ReadonlyMap<string, string> | KnownCurrentState): Promise<Evaluation> {
    if (evaluation.status !== 'accepted') return evaluation;
    const known = current === undefined ? await this.currentStateWithId(evaluation.roomId) : 'snapshotId' in current ? current : undefined;
    const state = known?.state ?? (current as ReadonlyMap<string, string> | undefined);
    if (!state) return evaluation;
    await this.loadAuthState(evaluation.graph, evaluation.event, state, evaluation.rules);
    const authState = await this.withPartialMembers(evaluation, state);
    const verdict = checkSoftFail(evaluation.event, authState, evaluation.graph.lookup, evaluation.rules);
    const checked = known ? { ...evaluation, current: known } : evaluation;
    return verdict.allowed ? checked : { ...checked, status: 'soft_failed', reason: `current state: ${verdict.reason.message}` };
  }

  /** The room's current state (the caller's own copy). */
  async currentState(roomId: string): Promise<Map<string, string> | undefined> {
    const known = await this.currentStateWithId(roomId);
    return known && new Map(known.state);
  }

  /** The room's current state and its snapshot ID: a commit right after, under the same lock, need not read them again. */
  async currentStateWithId(roomId: string): Promise<KnownCurrentState | undefined> {
    const room = await this.store.rooms.get(roomId);
    if (!room?.currentStateId) return undefined;
    const state = await this.roomState(room.currentStateId);
    return state && { snapshotId: room.currentStateId, state };
  }

  /**
   * A state snapshot keyed as room-state keys it, converted once per snapshot (issue 19: the current state was
   * converted, a JSON parse per key, three times for each event). Snapshots never change; the maps are shared.
   */
  private async roomState(snapshotId: string): Promise<ReadonlyMap<string, string> | undefined> {
    const known = this.roomStates.get(snapshotId);
    if (known) return known;
    const stored = await this.store.state.load(snapshotId);
    if (!stored) return undefined;
    const state = toRoomStateMap(stored);
    this.roomStates.set(snapshotId, state);
    return state;
  }

  /**
   * Persists the evaluated event with its outcome and moves the room on; publishes the room log entry.
   * Throws ClientTransactionTaken when `options.txn` already names another event (nothing of this one is kept).
   */
  async commit(evaluation: Evaluation, options: CommitOptions): Promise<Committed> {
    const { eventId, roomId, pdu, event, rules, status, reason } = evaluation;
    const recovered = await this.recover(roomId);
    // What the soft-fail check read stands unless a repair just moved the room on.
    const current = recovered.finished.length === 0 ? evaluation.current : undefined;
    try {
      const before = evaluation.beforeSnapshotId ?? (await this.store.state.save(roomId, toStoreStateMap(evaluation.before), evaluation.baseSnapshotId));
      const changesState = status !== 'rejected' && isStateEvent(event);
      const after = changesState ? await this.store.state.derive(roomId, before, [{ type: event.type, stateKey: event.state_key!, eventId }]) : before;
      // Computed here, where the state before the event is at hand, and kept with the pending commit for a repair.
      const unsigned = await this.withReplacedState(evaluation, options.unsigned);
      const payload: CommitPayload = { pdu, roomVersion: rules.id, status, reason, local: options.local, unsigned, txn: options.txn, before, after };
      // No copy: both stores keep the payload as JSON text (one serialisation of the PDU, not three).
      const pending: PendingCommit = { eventId, roomId, payload: payload as unknown as Record<string, unknown>, createdTs: Date.now() };
      // The commit point: with elastic ownership the store refuses it, in this same write, once the room has
      // seen a newer owner of its partition (this replica may have stalled since it last checked its lease).
      const journal = { commit: pending, fence: this.fenceFor(eventId, roomId, pdu) };
      // A client transaction is reserved between the journal record and the event's writes (a reservation
      // without a record would name an event never committed), so the record goes alone first. Otherwise it
      // goes with the event's writes: one transaction in the embedded store (issue 19).
      if (payload.txn) {
        await this.store.pendingCommits.add(journal.commit, journal.fence);
        return await this.finish(eventId, roomId, payload, evaluation.graph, undefined, false, false, current);
      }
      return await this.finish(eventId, roomId, payload, evaluation.graph, journal, false, options.deferRoomLog === true, current);
    } catch (err) {
      if (err instanceof CommitFencedError) this.fencing?.refused(err);
      else if (!(err instanceof ClientTransactionTaken)) this.unsettledRooms.add(roomId);
      throw err;
    }
  }

  private fenceFor(eventId: string, roomId: string, pdu: Pdu): CommitFence | undefined {
    if (!this.fencing) return undefined;
    // A new room's create event: its room ID is new (from the event itself in recent room versions, so the
    // replica serving the create command may not own its partition), and nobody else can commit there yet.
    if (pdu.type === 'm.room.create' && pdu.state_key === '') return undefined;
    const fence = this.fencing.fenceFor(roomId);
    if (!fence) throw new CommitFencedError(roomId, eventId, undefined, undefined);
    return fence;
  }

  /**
   * The writes of a commit, in an order that leaves the room usable wherever it stops; each may be repeated. The
   * store writes (journal record when `journal` is given, state refs, event, room, extremities, current state) go
   * to the store together, computed first: the embedded store makes them one transaction.
   */
  private async finish(
    eventId: string,
    roomId: string,
    payload: CommitPayload,
    graph = new EventGraph(this.store),
    journal?: EventCommitWrites['pending'],
    repairing = false,
    deferRoomLog = false,
    current?: KnownCurrentState,
  ): Promise<Committed> {
    const { pdu, status, reason, before, after } = payload;
    const rules = roomVersionRules(payload.roomVersion);
    const event = toRoomEvent(pdu, eventId);
    if (payload.txn && this.transactions) {
      const reserved = await this.transactions.record(payload.txn.sender, payload.txn.txnId, { eventId, roomId });
      if (reserved.eventId !== eventId) {
        await this.store.pendingCommits.remove(eventId, roomId);
        throw new ClientTransactionTaken(reserved);
      }
    }
    const accepted = status === 'accepted';
    let room: EventCommitWrites['room'];
    if (accepted && event.type === 'm.room.create' && event.state_key === '') {
      const creator = rules.creatorIsSender ? event.sender : typeof event.content.creator === 'string' ? event.content.creator : event.sender;
      room = { roomId, roomVersion: rules.id, creator, createdTs: event.origin_server_ts };
    }
    const forwardExtremities = accepted ? { add: [eventId], remove: await this.coveredBy(event.prev_events, graph) } : undefined;
    // A repair counts the joined servers again from the whole state: the cut-short attempt may have moved current
    // state without them, and then the change it would count them from is gone.
    const plan = forwardExtremities ? await this.planCurrentState(roomId, eventId, after, rules, graph, { recountJoinedServers: repairing }, forwardExtremities, current) : undefined;
    // The state refs before the event can be anyone's prev event, then the event, then the room moves on.
    const writes: EventCommitWrites = {
      pending: journal,
      stateRefs: { before, after },
      event: recordFor(eventId, roomId, pdu, event, status, reason, false),
      room,
      forwardExtremities,
      currentStateId: plan?.currentStateId,
    };
    // Within a run (and at its last message, with what it holds), the writes wait for the run's end (issue 19). Not
    // known then whether the event was new to the store: the redactions applied are read back.
    let inserted = false;
    if (this.runWrites && journal && !room && (deferRoomLog || this.runWrites.holding)) this.runWrites.hold(writes);
    else ({ inserted } = await this.store.commits.write(writes));

    let delta: Record<string, string | null> = {};
    let appliedNow: string[] | undefined;
    if (plan) {
      if (plan.joinedServers) await this.store.rooms.setJoinedServers(roomId, plan.joinedServers);
      delta = plan.delta;
      // After the state refs (the redact power check reads the state before the redaction), before the room log
      // entry (which says whether it applied).
      const claims = await this.redactions.onAccepted(eventId, roomId, pdu, rules);
      // An event new to the store can have been redacted only by what was applied just now (issue 19: a read per event).
      if (inserted && pdu.type !== 'm.room.redaction') appliedNow = claims.filter((c) => c.targetEventId === eventId).map((c) => c.redactionEventId);
    }
    const entry: RoomLogEntry = {
      eventId,
      roomId,
      outcome: OUTCOME[status],
      local: payload.local,
      event: logEventOf(eventId, roomId, pdu, payload.unsigned),
      stateDelta: delta,
      joinedServers: await this.store.rooms.getJoinedServers(roomId),
      redactionsApplied: status === 'accepted' ? (appliedNow ?? (await this.redactionsApplied(eventId, pdu, rules))) : [],
    };
    this.enqueue(roomId, { entry, pendingEventId: eventId });
    if (deferRoomLog) this.armBackstop();
    else await this.flushRoom(roomId);
    return { eventId, roomId, status, reason, entry };
  }

  /** Read back from the store, so a finished-late commit says the same as the first attempt would have. */
  private async redactionsApplied(eventId: string, pdu: Pdu, rules: RoomVersionRules): Promise<string[]> {
    const target = pdu.type === 'm.room.redaction' ? redactsOf(pdu, rules) : undefined;
    const records = await this.store.events.getMany(target === undefined ? [eventId] : [eventId, target]);
    const applied: string[] = [];
    const own = records.get(eventId)?.redactedBy;
    if (own !== undefined) applied.push(own);
    if (target !== undefined && records.get(target)?.redactedBy === eventId) applied.push(eventId);
    return applied;
  }

  /**
   * The extremities an accepted event makes obsolete: its prev events, and through any of them that were
   * rejected or soft-failed (never extremities themselves), what those were built on.
   */
  private async coveredBy(prevEvents: readonly string[], graph: EventGraph): Promise<string[]> {
    const covered = new Set(prevEvents);
    let frontier: readonly string[] = prevEvents;
    for (let steps = 0; frontier.length > 0 && steps < 100; steps++) {
      // The evaluation loaded the prev events' records already (their status and prev events do not change under the room's lock).
      const inGraph = frontier.map((id) => graph.record(id));
      const records = inGraph.every((r) => r !== undefined) ? inGraph : [...(await this.store.events.getMany([...frontier])).values()];
      const next: string[] = [];
      for (const record of records) {
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

  /** Publishes a room log entry (after the room's entries waiting in the outbox). */
  async publish(entry: RoomLogEntry): Promise<void> {
    this.enqueue(entry.roomId, { entry });
    await this.flushRoom(entry.roomId);
  }

  /** Publishes every room's waiting entries (the end of a run, a stop). */
  async flushAll(): Promise<void> {
    await Promise.all([...this.outbox.keys(), ...this.publishing.keys()].map((roomId) => this.flushRoom(roomId)));
  }

  /**
   * Commits held for a run were lost (their write failed): their entries never go out, and the rooms are finished by the
   * repair (what was written has its pending record) before their next work; the bus redelivers the rest.
   */
  dropHeld(roomIds: ReadonlySet<string>): void {
    for (const roomId of roomIds) {
      this.outbox.delete(roomId);
      this.unsettledRooms.add(roomId);
    }
  }

  private enqueue(roomId: string, item: OutboxItem): void {
    const items = this.outbox.get(roomId);
    if (items) items.push(item);
    else this.outbox.set(roomId, [item]);
  }

  /** A run the bus cut short (a nak, a stop) hands over no last message: what it left waiting goes out a little later. */
  private armBackstop(): void {
    if (this.backstop) return;
    this.backstop = setTimeout(() => {
      this.backstop = undefined;
      // A failure leaves the room to the repair (its pending records stay): the next work there or the repair timer.
      this.flushAll().catch(() => undefined);
    }, OUTBOX_BACKSTOP_MS);
    this.backstop.unref();
  }

  /**
   * Publishes the room's waiting entries in one batch, after any publish of the room under way, then removes their
   * pending records in one write. Resolves once everything enqueued for the room before the call is out.
   */
  private flushRoom(roomId: string): Promise<void> {
    const items = this.outbox.get(roomId);
    this.outbox.delete(roomId);
    const previous = this.publishing.get(roomId);
    if (!items) return previous ?? Promise.resolve();
    const mine = (async () => {
      try {
        // An earlier batch of the room that failed: this one does not overtake it. Both stay to the repair (their
        // pending records are kept), which publishes them in commit order.
        await previous;
        // The commits held for the run go to the store before their entries go out (lost if this fails: not published).
        await this.runWrites?.flush();
        const subject = this.topology.roomLog.subjectFor(roomId);
        if (items.length === 1) await this.bus.publish(subject, items[0]!.entry, { messageId: roomLogMessageId(items[0]!.entry) });
        else await this.bus.publishBatch(items.map(({ entry }) => ({ subject, data: entry, options: { messageId: roomLogMessageId(entry) } })));
        const settled = items.flatMap((i) => (i.pendingEventId === undefined ? [] : [i.pendingEventId]));
        if (settled.length > 0) await this.store.pendingCommits.removeAll(roomId, settled);
      } catch (err) {
        this.unsettledRooms.add(roomId);
        throw err;
      }
    })();
    const tail = mine.finally(() => {
      if (this.publishing.get(roomId) === tail) this.publishing.delete(roomId);
    });
    tail.catch(() => undefined);
    this.publishing.set(roomId, tail);
    return mine;
  }

  /**
   * Sets the room's current state to the resolved state of its forward extremities, and the joined servers
   * when membership changed (`fullState`: always, from the state alone — a partial-state room's full state is in).
   * With `fence` (a resync's), the store refuses both writes once the room has seen a newer lease holding.
   * Returns the change to current state.
   */
  async updateCurrentState(
    roomId: string,
    newEventId: string,
    newAfterId: string,
    rules: RoomVersionRules,
    graph: EventGraph,
    options: { fullState?: boolean; fence?: RoomWriteFence } = {},
  ): Promise<Record<string, string | null>> {
    const plan = await this.planCurrentState(roomId, newEventId, newAfterId, rules, graph, options);
    await this.store.rooms.setCurrentState(roomId, plan.currentStateId, options.fence);
    if (plan.joinedServers) await this.store.rooms.setJoinedServers(roomId, plan.joinedServers, options.fence);
    return plan.delta;
  }

  /**
   * What `updateCurrentState` writes, computed without writing (but a resolved state's snapshot, content-addressed):
   * with `extremitiesChange`, as if that change of the forward extremities were made already.
   */
  private async planCurrentState(
    roomId: string,
    newEventId: string,
    newAfterId: string,
    rules: RoomVersionRules,
    graph: EventGraph,
    options: { fullState?: boolean; recountJoinedServers?: boolean },
    extremitiesChange?: { add: string[]; remove: string[] },
    known?: KnownCurrentState,
  ): Promise<{ currentStateId: string; delta: Record<string, string | null>; joinedServers?: string[] }> {
    const oldStateId = known ? known.snapshotId : (await this.store.rooms.get(roomId))?.currentStateId;
    const old: ReadonlyMap<string, string> = known?.state ?? (oldStateId ? (await this.roomState(oldStateId))! : new Map<string, string>());
    const stored = await this.store.rooms.getForwardExtremities(roomId);
    const extremities = extremitiesChange ? afterChange(stored, extremitiesChange) : stored;
    let currentId = newAfterId;
    let current: ReadonlyMap<string, string>;
    const others = extremities.filter((id) => id !== newEventId);
    const otherRefs = (await Promise.all(others.map((id) => this.store.state.getForEvent(id)))).filter((r) => r !== undefined);
    const newState = (await this.roomState(newAfterId))!;
    if (otherRefs.length === 0) current = newState;
    else {
      const sets = [newState, ...(await Promise.all(otherRefs.map(async (r) => (await this.roomState(r.after))!)))];
      current = await this.resolve(sets, rules, graph, roomId);
      currentId = await this.store.state.save(roomId, toStoreStateMap(current), newAfterId);
    }
    const delta = stateDelta(old, current);
    const membershipChanged = !oldStateId || Object.keys(delta).some((k) => k.startsWith('m.room.member\u0000'));
    if (!membershipChanged && !options.fullState && !options.recountJoinedServers) return { currentStateId: currentId, delta };
    const joined = oldStateId && !options.fullState && !options.recountJoinedServers ? await this.joinedServersAfter(roomId, delta, current, graph) : new Set(await this.joinedServers(current, graph));
    // Partial state: the servers send_join named stay joined until the members are known.
    const partial = options.fullState ? undefined : await this.store.partialStateRooms.get(roomId);
    for (const server of partial?.serversInRoom ?? []) joined.add(server);
    return { currentStateId: currentId, delta, joinedServers: [...joined].sort() };
  }

  /**
   * The joined servers after a change of membership: the stored ones, with only the servers whose members changed
   * looked at again (issue 19: reading every member of the room on each join made serving joins grow with the room).
   */
  private async joinedServersAfter(roomId: string, delta: Record<string, string | null>, current: StateMap, graph: EventGraph): Promise<Set<string>> {
    const memberPrefix = 'm.room.member\u0000';
    const changed = new Set(Object.keys(delta).filter((k) => k.startsWith(memberPrefix)).map((k) => domainOf(k.slice(memberPrefix.length))));
    const joined = new Set((await this.store.rooms.getJoinedServers(roomId)).filter((server) => !changed.has(server)));
    const memberIds: string[] = [];
    for (const [key, id] of current) if (key.startsWith(memberPrefix) && changed.has(domainOf(key.slice(memberPrefix.length)))) memberIds.push(id);
    await graph.load(memberIds);
    for (const id of memberIds) {
      const member = graph.lookup(id);
      if (member?.content.membership === 'join' && member.state_key) joined.add(domainOf(member.state_key));
    }
    return joined;
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

  async resolve(sets: ReadonlyMap<string, string>[], rules: RoomVersionRules, graph: EventGraph, roomId: string): Promise<Map<string, string>> {
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
