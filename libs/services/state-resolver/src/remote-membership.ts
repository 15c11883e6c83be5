// chat-sync asks a local user to join, leave or knock on a room this server is not in: make_* and send_*
// through each `via` server in turn. A join brings the room's state here (verified, as outliers) and
// starts the room's timeline at the join.
import type { MembershipKind, RemoteMembershipCommand, RemoteMembershipReply } from '@fedgate/bus';
import { FederationApi, FederationHttpError, partitionRemoteEvents, verifyRemoteEvents, wireForm, type KeyRing, type RefusedRemoteEvent, type SendJoinResponse } from '@fedgate/federation-client';
import { computeEventId, isSupportedRoomVersion, ROOM_VERSIONS, roomVersionRules, type Pdu, type RoomVersionRules } from '@fedgate/protocol';
import { authorizeByAuthEvents, authorizeEvent, authStateFromMap, createEventIdForRoom, domainOf, isObject, stateMapKey, toRoomEvent } from '@fedgate/room-state';
import type { Store } from '@fedgate/store';
import { withPhaseSpan } from '@fedgate/telemetry';
import { CommandRefusal, describeError, forbidden } from './errors';
import { finishEvent, type BuiltEvent, type ServerSigner } from './event-builder';
import { OutOfBandMembership } from './out-of-band-membership';
import { OutlierImporter } from './outliers';
import { auditRefused } from './refused-events';
import type { LocalEvents } from './local-events';
import type { RoomLocks } from './room-locks';
import { logEventOf, recordFor, type RoomTimeline } from './room-timeline';
import { toStoreStateMap } from './state-keys';

const SUPPORTED_VERSIONS = [...ROOM_VERSIONS.keys()];
const CREATE_KEY = stateMapKey('m.room.create', '');
type OutlierImporterGraph = Awaited<ReturnType<OutlierImporter['import']>>['graph'];

export class RemoteMembership {
  private readonly importer: OutlierImporter;
  private readonly outOfBand: OutOfBandMembership;

  constructor(
    private readonly store: Store,
    private readonly timeline: RoomTimeline,
    private readonly locks: RoomLocks,
    private readonly keyRing: KeyRing,
    private readonly api: FederationApi,
    private readonly signer: ServerSigner,
    private readonly localEvents?: LocalEvents,
    /** Told of each room joined with partial state, once the join is in (starts the background resync). */
    private readonly onPartialJoin: (roomId: string) => void = () => undefined,
  ) {
    this.importer = new OutlierImporter(store, keyRing);
    this.outOfBand = new OutOfBandMembership(store, timeline, signer.serverName, signer);
  }

  async onCommand(command: RemoteMembershipCommand): Promise<RemoteMembershipReply> {
    if (domainOf(command.userId) !== this.signer.serverName) return forbidden(`${command.userId} is not a user of ${this.signer.serverName}`).toReply();
    const via = [...new Set(command.via ?? [])].filter((s) => s !== this.signer.serverName);
    if (this.localEvents && (await this.store.rooms.getJoinedServers(command.roomId)).includes(this.signer.serverName)) {
      // We are in the room already (another local user is): the membership is an ordinary local event.
      const reply = await this.localEvents.onCommand({
        roomId: command.roomId,
        sender: command.userId,
        type: 'm.room.member',
        stateKey: command.userId,
        content: { ...(command.content ?? {}), membership: command.membership },
      });
      return reply.ok ? { ok: true, roomId: command.roomId, eventId: reply.eventId } : { ...reply, ok: false };
    }
    if (via.length === 0) return new CommandRefusal('M_INVALID_PARAM', 'no server to go through (via)', 400).toReply();
    const failures: string[] = [];
    let refusal: RemoteMembershipReply | undefined;
    for (const server of via) {
      try {
        const eventId = await this.locks.run(command.roomId, () => this.through(server, command));
        return { ok: true, roomId: command.roomId, eventId };
      } catch (err) {
        if (err instanceof CommandRefusal && err.errcode !== 'M_UNKNOWN') refusal = err.toReply();
        else if (err instanceof FederationHttpError && err.status >= 400 && err.status < 500 && err.errcode && err.errcode !== 'M_NOT_FOUND') {
          const body = err.body as { error?: unknown };
          refusal = { ok: false, errcode: err.errcode, error: `${server}: ${typeof body?.error === 'string' ? body.error : err.message}`, status: err.status };
        }
        // A refusal ends a join or knock; a leave falls back to a local one below.
        if (refusal && command.membership !== 'leave') return refusal;
        failures.push(`${server}: ${describeError(err)}`);
      }
    }
    if (command.membership === 'leave') {
      // Rejecting an invite must work when the inviting server cannot serve make_leave (gone, or left the room).
      const eventId = await this.locks.run(command.roomId, () => this.outOfBand.localLeave(command.roomId, command.userId, command.content ?? {}));
      if (eventId) return { ok: true, roomId: command.roomId, eventId };
    }
    return refusal ?? { ok: false, errcode: 'M_UNKNOWN', error: `no server could ${command.membership} us: ${failures.join('; ')}`, status: 502 };
  }

  private async through(server: string, command: RemoteMembershipCommand): Promise<string> {
    // The resident's keys verify what send_join answers: a fetch started now runs beside make_join rather than after
    // send_join (the verification joins it, or finds the keys held). Only a head start: a failure here is the
    // verification's to report.
    if (command.membership === 'join') void this.keyRing.prepare([{ serverName: server }]).catch(() => undefined);
    const made = await this.make(server, command.membership, command.roomId, command.userId);
    const version = made.room_version ?? '1';
    if (!isSupportedRoomVersion(version)) throw new CommandRefusal('M_UNSUPPORTED_ROOM_VERSION', `${server} offered room version ${JSON.stringify(version)}`, 400);
    const rules = roomVersionRules(version);
    const built = this.fill(made.event, command, rules);
    switch (command.membership) {
      case 'join':
        return this.join(server, command.roomId, built, rules);
      case 'leave':
        await this.api.sendLeave(server, command.roomId, built.eventId, built.pdu);
        return this.keepOutlier(command.roomId, built, {});
      case 'knock': {
        const { knock_room_state } = await this.api.sendKnock(server, command.roomId, built.eventId, built.pdu);
        return this.keepOutlier(command.roomId, built, { knock_room_state: knock_room_state as never });
      }
    }
  }

  private make(server: string, membership: MembershipKind, roomId: string, userId: string) {
    switch (membership) {
      case 'join':
        return this.api.makeJoin(server, roomId, userId, SUPPORTED_VERSIONS);
      case 'leave':
        return this.api.makeLeave(server, roomId, userId);
      case 'knock':
        return this.api.makeKnock(server, roomId, userId, SUPPORTED_VERSIONS);
    }
  }

  /** The template with what is ours to fill: membership, content, origin, timestamp; then hashed and signed. */
  private fill(template: Record<string, unknown>, command: RemoteMembershipCommand, rules: RoomVersionRules): BuiltEvent {
    const content = { ...(isObject(template.content) ? template.content : {}), ...(command.content ?? {}), membership: command.membership };
    if (template.type !== 'm.room.member' || template.state_key !== command.userId || template.sender !== command.userId || template.room_id !== command.roomId) {
      throw new CommandRefusal('M_UNKNOWN', 'the template is not for this membership', 502);
    }
    // Room versions 1 and 2: a template may carry the resident server's event ID, but the event is ours, so its ID
    // is on our domain (finishEvent makes one): servers check that an event is signed by its ID's server.
    const { event_id: _residentEventId, ...ours } = template;
    const event: Record<string, unknown> = { ...ours, content, origin_server_ts: Date.now() };
    if (!rules.creatorIsSender || template.origin !== undefined) event.origin = this.signer.serverName;
    return finishEvent(event, rules, this.signer);
  }

  private async join(server: string, roomId: string, built: BuiltEvent, rules: RoomVersionRules): Promise<string> {
    const answer = await this.api.sendJoin(server, roomId, built.eventId, built.pdu, { omitMembers: true });
    let joinPdu = built.pdu;
    if (answer.event) {
      // Restricted joins come back with the resident server's signature added.
      const { valid } = partitionRemoteEvents(
        await withPhaseSpan('verify the join as answered', () => verifyRemoteEvents(this.keyRing, [answer.event], { roomVersion: rules, roomId, expectedIds: new Set([built.eventId]) })),
      );
      if (valid.length === 1 && !valid[0].redacted) joinPdu = valid[0].pdu;
    }
    const { graph, refused } = await withPhaseSpan(
      'import the send_join state',
      () => this.importer.import([...answer.state, ...answer.auth_chain], rules, roomId),
      (r) => ({ 'fedgate.events': r.imported.length }),
    );
    return withPhaseSpan('commit the join', () => this.commitJoin(server, roomId, built, rules, answer, joinPdu, graph, refused));
  }

  private async commitJoin(
    server: string,
    roomId: string,
    built: BuiltEvent,
    rules: RoomVersionRules,
    answer: SendJoinResponse,
    joinPdu: Pdu,
    graph: OutlierImporterGraph,
    refused: readonly RefusedRemoteEvent[],
  ): Promise<string> {
    await auditRefused(this.store, this.signer.serverName, server, 'PUT', `/_matrix/federation/v2/send_join/${roomId}/${built.eventId}`, refused);
    const before = OutlierImporter.stateFrom(stateIdsOf(answer.state, graph, rules), graph, roomId);
    if (before.size === 0) throw new CommandRefusal('M_UNKNOWN', `${server} gave no usable room state (${refused.length} events refused: ${refused[0]?.reason ?? ''})`, 502);
    this.checkCreateEvent(server, roomId, before, graph, rules);

    const join = graph.add(built.eventId, joinPdu);
    const byAuth = authorizeByAuthEvents(join, graph.lookup, rules, graph.isRejected);
    const byState = byAuth.allowed ? authorizeEvent(join, authStateFromMap(before, graph.lookup, roomId), rules) : byAuth;
    if (!byState.allowed) throw forbidden(`our join does not pass auth against the state ${server} gave: ${byState.reason.message}`);

    const create = graph.lookup(before.get(CREATE_KEY)!);
    const creator = create ? (rules.creatorIsSender ? create.sender : String(create.content.creator ?? create.sender)) : '';
    // Partial state: recorded before the join is, so whatever part of the join a crash leaves, the resync finds it.
    const partial = answer.members_omitted === true;
    const serversInRoom = [...new Set([server, ...(answer.servers_in_room ?? [])])].sort();
    if (partial) await this.store.partialStateRooms.begin({ roomId, joinEventId: built.eventId, serversInRoom, resident: server, startedTs: Date.now() });
    await this.store.rooms.ensure({ roomId, roomVersion: rules.id, creator, createdTs: create?.origin_server_ts ?? Date.now() });

    // The resident server may list our join in the state it answers with (imported above as an outlier): it is timeline here.
    const { inserted } = await this.store.events.append(recordFor(built.eventId, roomId, joinPdu, join, 'accepted', undefined, false));
    if (!inserted) await this.store.events.setOutcome(built.eventId, { status: 'accepted', outlier: false });
    const beforeId = await this.store.state.save(roomId, toStoreStateMap(before));
    const afterId = await this.store.state.derive(roomId, beforeId, [{ type: 'm.room.member', stateKey: join.state_key!, eventId: built.eventId }]);
    // Before the join can be an extremity (anyone's prev event): the state at it.
    await this.store.state.setForEvent(built.eventId, { before: beforeId, after: afterId });
    const extremities = await this.store.rooms.getForwardExtremities(roomId);
    await this.store.rooms.updateForwardExtremities(roomId, { add: [built.eventId], remove: extremities });
    await this.store.rooms.setCurrentState(roomId, afterId);
    const after = new Map(before).set(`m.room.member\u0000${join.state_key}`, built.eventId);
    const joined = new Set(await this.timeline.joinedServers(after, graph));
    if (partial) for (const s of serversInRoom) joined.add(s);
    await this.store.rooms.setJoinedServers(roomId, [...joined].sort());
    const delta: Record<string, string | null> = {};
    for (const [k, v] of after) delta[k] = v;
    await this.timeline.publish({
      eventId: built.eventId,
      roomId,
      outcome: 'accepted',
      local: true,
      event: logEventOf(built.eventId, roomId, joinPdu),
      stateDelta: delta,
      joinedServers: [...joined].sort(),
      // The resident accepted it in send_join and sends it to the room's other servers (spec, "Joining rooms").
      heldBy: [server],
    });
    if (partial) this.onPartialJoin(roomId);
    return built.eventId;
  }

  /**
   * The send_join state must hold this room's create event, and its room version must be the one make_join offered:
   * the events were checked under that version's rules, and the room is recorded with it.
   */
  private checkCreateEvent(server: string, roomId: string, before: Map<string, string>, graph: OutlierImporterGraph, rules: RoomVersionRules): void {
    const createId = before.get(CREATE_KEY);
    const create = createId === undefined ? undefined : graph.lookup(createId);
    if (!create) throw new CommandRefusal('M_UNKNOWN', `${server} gave room state without the room's m.room.create event`, 502);
    if (rules.roomIdFromCreateEvent && createEventIdForRoom(roomId) !== create.event_id) {
      throw new CommandRefusal('M_UNKNOWN', `${server} gave the create event ${create.event_id}, which is not the one room ${roomId} is named after`, 502);
    }
    const version = create.content.room_version ?? '1';
    if (version !== rules.id) {
      throw new CommandRefusal('M_UNKNOWN', `${server} said room ${roomId} is version ${rules.id} in make_join, but its create event says ${JSON.stringify(version)}`, 502);
    }
  }

  /** Leaves and knocks on rooms we are not in: we keep the event (as an outlier) and tell chat-sync. */
  private async keepOutlier(roomId: string, built: BuiltEvent, unsigned: Record<string, never>): Promise<string> {
    const event = toRoomEvent(built.pdu, built.eventId);
    await this.store.events.append(recordFor(built.eventId, roomId, built.pdu, event, 'accepted', undefined, true));
    await this.timeline.publish({
      eventId: built.eventId,
      roomId,
      outcome: 'accepted',
      local: false,
      event: logEventOf(built.eventId, roomId, built.pdu, Object.keys(unsigned).length > 0 ? unsigned : undefined),
      stateDelta: {},
      joinedServers: [],
    });
    return built.eventId;
  }
}

/** The event IDs of the state PDUs (computed: from v3 on PDUs do not carry them). */
function stateIdsOf(state: Record<string, unknown>[], graph: { has(id: string): boolean }, rules: RoomVersionRules): string[] {
  const ids: string[] = [];
  for (const raw of state) {
    try {
      const id = rules.eventFormat === 'v1' ? String(raw.event_id) : computeId(raw, rules);
      if (graph.has(id)) ids.push(id);
    } catch {
      // refused by the importer already
    }
  }
  return ids;
}

function computeId(raw: Record<string, unknown>, rules: RoomVersionRules): string {
  return computeEventId(wireForm(raw, rules), rules);
}
