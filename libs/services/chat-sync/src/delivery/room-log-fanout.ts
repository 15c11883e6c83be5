// Room log → application services: every accepted event goes to each AS with interest in it (sender,
// membership target, room ID, alias or a joined member in its namespaces), as an AppServicePush on
// that AS's subject. Invites carry the stripped room state the invitee may see.
//
// A redaction goes only once it is applied (rooms v3+ "Handling redactions": clients see it when the
// server would apply it), so a member who may not redact a message cannot delete it on the chat platform:
// one whose target is unknown, or whose sender may not redact the target, is held back (its claim stays in
// the store) and goes right after its target once the target arrives and the redaction applies. A
// soft-failed state event that later enters the room's current state (a later event builds on it) is
// pushed then, as the state it now is.
import { LRUCache } from 'lru-cache';
import type { JsonObject, PublishItem, RoomLogEntry } from '@fedgate/bus';
import type { Bus, BusTopology, Store } from '@fedgate/platform';
import { isUserOf } from '@fedgate/protocol';
import { parseStateTupleKey, stateTupleKey } from '@fedgate/store';
import type { Logger } from 'pino';
import { ApplicationServiceRegistry } from '../registration';
import { strippedState, toClientEvent } from '../rooms/client-event';
import { RoomView } from '../rooms/room-view';
import type { InviteeProvisioning } from './invitee-provisioning';

/** The room log's form of a stored event (what RoomLogEntry.event carries). */
type LoggedEvent = Pick<RoomLogEntry, 'eventId' | 'roomId' | 'event'>;

/** Joined members kept, counted in members (a 10,000-member room's list is 10,000). */
const JOINED_MEMBERS_CACHE_SIZE = 200_000;

const INVITE_STATE_TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'];

export class RoomLogFanout {
  /**
   * Joined members by current-state snapshot. Snapshot IDs are content-addressed, so a snapshot's members never
   * change: the room's state is read once per state change, not once per event (issue 19: it was a load of the
   * whole state and of every state event for each message pushed).
   */
  private readonly joinedBySnapshot = new LRUCache<string, readonly string[]>({ maxSize: JOINED_MEMBERS_CACHE_SIZE, sizeCalculation: (members) => members.length + 1 });
  /** Pushes not published yet (the rest of the bus run was in hand), in order; every partition's consumer shares them. */
  private readonly waiting: PublishItem[] = [];
  /** The publish under way: the next goes after it, so pushes keep their order. */
  private publishing: Promise<void> = Promise.resolve();
  /**
   * Per room, its current-state snapshot as read in this run of the room log (issue 19: a room read per event before).
   * Every entry of a run was committed before the bus handed the run over, so the state read holds all of them;
   * forgotten at the run's end (`flush`).
   */
  private readonly currentStateInRun = new Map<string, string | null | undefined>();

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly topology: BusTopology,
    private readonly registry: ApplicationServiceRegistry,
    private readonly serverName: string,
    private readonly logger: Logger,
    private readonly invitees?: InviteeProvisioning,
    /** A user joined a room or left their last one here: their device list matters to someone else now, or no longer. */
    private readonly onJoinedOrLeft?: (userId: string) => Promise<void>,
  ) {}

  /**
   * `moreInHand` (the bus hands over more of its run next): the entry's pushes wait to be published with the run's
   * (issue 19: one bus commit per run, not per event), at the run's last entry or `flush`, which the subscription
   * awaits before the bus settles the run.
   */
  async handle(entry: RoomLogEntry, options: { moreInHand?: boolean } = {}): Promise<void> {
    await this.handleEntry(entry);
    if (!options.moreInHand) await this.flush();
  }

  /** Publishes every push waiting, in order, after any publish under way; on failure they wait again. */
  flush(): Promise<void> {
    this.currentStateInRun.clear();
    const done = this.publishing.then(() => this.publishWaiting());
    this.publishing = done.catch(() => undefined);
    return done;
  }

  private async publishWaiting(): Promise<void> {
    const items = this.waiting.splice(0);
    if (items.length === 0) return;
    try {
      if (items.length === 1) await this.bus.publish(items[0]!.subject, items[0]!.data, items[0]!.options);
      else await this.bus.publishBatch(items);
    } catch (err) {
      this.waiting.unshift(...items);
      throw err;
    }
  }

  private async handleEntry(entry: RoomLogEntry): Promise<void> {
    const pdu = entry.event as { type: string; sender: string; state_key?: string; content: Record<string, unknown>; unsigned?: Record<string, unknown> };
    if (pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' && isUserOf(pdu.state_key, this.serverName) && entry.outcome === 'accepted') {
      await this.store.memberships.set(pdu.state_key, entry.roomId, String(pdu.content.membership), entry.eventId);
    }
    // Soft-failed and rejected events never reach clients.
    if (entry.outcome !== 'accepted') return;
    if (pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' && this.onJoinedOrLeft) {
      const before = (pdu.unsigned?.prev_content as { membership?: unknown } | undefined)?.membership;
      if ((before === 'join') !== (pdu.content.membership === 'join')) await this.onJoinedOrLeft(pdu.state_key);
    }
    if (pdu.type === 'm.room.redaction' && !(await this.redactionApplied(entry))) {
      this.logger.info(
        { eventId: entry.eventId, roomId: entry.roomId, redacts: redactsOf(entry.event) },
        'redaction held back from application services: not applied (target unknown here, or its sender may not redact it); it goes once it applies',
      );
      return;
    }
    for (const entered of await this.softFailedEnteringState(entry)) await this.push(entered);
    await this.push(entry);
    for (const redactionId of entry.redactionsApplied ?? []) {
      if (redactionId === entry.eventId) continue;
      const redaction = await this.store.events.get(redactionId);
      if (redaction) await this.push({ eventId: redactionId, roomId: redaction.roomId, event: { ...redaction.pdu, event_id: redactionId, room_id: redaction.roomId } as unknown as JsonObject });
    }
  }

  /** Whether the room log says the redaction applied; an entry from before that was said is checked against the store. */
  private async redactionApplied(entry: RoomLogEntry): Promise<boolean> {
    if (entry.redactionsApplied !== undefined) return entry.redactionsApplied.includes(entry.eventId);
    const target = redactsOf(entry.event);
    return target !== undefined && (await this.store.events.get(target))?.redactedBy === entry.eventId;
  }

  /** Soft-failed events this entry brings into current state: never pushed when they came, so pushed now. */
  private async softFailedEnteringState(entry: RoomLogEntry): Promise<LoggedEvent[]> {
    const ids = Object.values(entry.stateDelta ?? {}).filter((id): id is string => typeof id === 'string' && id !== entry.eventId);
    if (ids.length === 0) return [];
    const records = await this.store.events.getMany(ids);
    return [...records.values()]
      .filter((r) => r.status === 'soft_failed' && r.roomId === entry.roomId)
      .map((r) => ({ eventId: r.eventId, roomId: r.roomId, event: { ...r.pdu, event_id: r.eventId, room_id: r.roomId } as unknown as JsonObject }));
  }

  private async push(entry: LoggedEvent): Promise<void> {
    const pdu = entry.event as { type: string; sender: string; state_key?: string; content: Record<string, unknown>; unsigned?: Record<string, unknown> };
    // Before the invite is pushed: the AS is asked about an invitee nobody registered (and may create it).
    if (pdu.type === 'm.room.member' && pdu.content.membership === 'invite' && typeof pdu.state_key === 'string') {
      await this.invitees?.ensureRegistered(pdu.state_key);
    }
    const view = new RoomView(this.store);
    const joinedMembers = await this.joinedMembers(entry.roomId);
    const interestEvent = { type: pdu.type, room_id: entry.roomId, sender: pdu.sender, state_key: pdu.state_key };
    let interested = this.registry.interestedIn(interestEvent, { joinedMembers });
    // The room's aliases only when they could change the answer (a store scan per event on FerretDB otherwise).
    if (this.registry.services.some((s) => s.hasAliasNamespaces && !interested.includes(s))) {
      const aliases = (await this.store.aliases.forRoom(entry.roomId)).map((a) => a.alias);
      interested = this.registry.interestedIn(interestEvent, { joinedMembers, aliases });
    }
    if (interested.length === 0) return;
    const event = toClientEvent(entry.event, entry.eventId, entry.roomId);
    if (pdu.type === 'm.room.member' && pdu.content.membership === 'invite' && !Array.isArray(event.unsigned?.invite_room_state)) {
      event.unsigned = { ...event.unsigned, invite_room_state: await this.inviteRoomState(view, entry.roomId, pdu.sender) };
    }
    for (const service of interested) {
      this.waiting.push({
        subject: this.topology.appservice.subjectFor(service.id),
        data: { appserviceId: service.id, roomId: entry.roomId, eventId: entry.eventId, event, kind: 'event' },
        options: { messageId: `${service.id}:${entry.eventId}` },
      });
    }
    this.logger.debug({ eventId: entry.eventId, appServices: interested.map((s) => s.id) }, 'room event for application services');
  }

  private async joinedMembers(roomId: string): Promise<readonly string[]> {
    let snapshotId = this.currentStateInRun.get(roomId);
    if (!this.currentStateInRun.has(roomId)) {
      snapshotId = (await this.store.rooms.get(roomId))?.currentStateId;
      this.currentStateInRun.set(roomId, snapshotId);
    }
    if (!snapshotId) return [];
    const known = this.joinedBySnapshot.get(snapshotId);
    if (known) return known;
    const state = await this.store.state.load(snapshotId);
    if (!state) return [];
    const memberIds = [...state].filter(([key]) => parseStateTupleKey(key).type === 'm.room.member').map(([, id]) => id);
    const records = await this.store.events.getMany(memberIds);
    const joined: string[] = [];
    for (const record of records.values()) {
      if ((record.pdu.content as { membership?: unknown } | undefined)?.membership === 'join' && record.stateKey !== undefined) joined.push(record.stateKey);
    }
    this.joinedBySnapshot.set(snapshotId, joined);
    return joined;
  }

  private async inviteRoomState(view: RoomView, roomId: string, inviter: string): Promise<Record<string, unknown>[]> {
    const state = await view.currentState(roomId);
    if (!state) return [];
    const stripped: Record<string, unknown>[] = [];
    for (const type of INVITE_STATE_TYPES) {
      const record = state.events.get(stateTupleKey(type, ''));
      if (record) stripped.push(strippedState(record.pdu));
    }
    const inviterMember = state.events.get(stateTupleKey('m.room.member', inviter));
    if (inviterMember) stripped.push(strippedState(inviterMember.pdu));
    return stripped;
  }
}

/** The event a redaction names: in its content from room version 11, at the top level before. */
function redactsOf(event: JsonObject): string | undefined {
  const content = event.content as { redacts?: unknown } | undefined;
  const redacts = content?.redacts ?? event.redacts;
  return typeof redacts === 'string' ? redacts : undefined;
}
