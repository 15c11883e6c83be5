// What ingress asks of us when a remote server joins, leaves or knocks on one of our rooms, or invites one
// of our users: templates (make_*), the signed result (send_*), and countersigned invites.
import type {
  MakeMembershipCommand,
  MakeMembershipReply,
  MembershipKind,
  ReceiveInviteCommand,
  ReceiveInviteReply,
  SendMembershipCommand,
  SendMembershipReply,
} from '@fedgate/bus';
import { wireForm } from '@fedgate/federation-client';
import { computeEventId, isSupportedRoomVersion, isUserOf, roomVersionRules, signEvent, validatePdu, type Pdu, type RoomVersionRules, type SigningKey } from '@fedgate/protocol';
import { authStateFromMap, authorizeEvent, authClosure, domainOf, isObject, toRoomEvent, userPowerLevel, powerLevelsOf, stateMapKey } from '@fedgate/room-state';
import { pduWithRedaction, type EventRecord, type Store } from '@fedgate/store';
import { badJson, CommandRefusal, describeError, forbidden, MissingStateError, notFound } from './errors';
import type { EventBuilder } from './event-builder';
import { EventGraph } from './event-graph';
import { membersOfServer, needsHeroes, reduceJoinState, serversBeforeJoin } from './omitted-members';
import type { InviteChecks } from './invite-checks';
import type { InviteEntry } from './invite-entry';
import type { PolicyServerSignatures } from './policy-server-signatures';
import { strippedState } from './local-events';
import type { RoomLocks } from './room-locks';
import { logEventOf, recordFor, type RoomTimeline } from './room-timeline';
import { toRoomStateMap } from './state-keys';

const incompatible = (message: string) => new CommandRefusal('M_INCOMPATIBLE_ROOM_VERSION', message, 400);
/** The spec's "try another server": we cannot meet the rules on join_authorised_via_users_server. */
const grantRefused = (message: string) => new CommandRefusal('M_UNABLE_TO_GRANT_JOIN', message, 400);

interface RestrictedJoin {
  alreadyMember: boolean;
  allowedRoomKnown: boolean;
  joinerAllowed: boolean;
  authorisers: string[];
}

function replyOf<T>(work: () => Promise<T>): Promise<T | { ok: false; errcode: string; error: string; status?: number }> {
  return work().catch((err) => {
    if (err instanceof CommandRefusal) return err.toReply();
    throw err;
  });
}

/** A PDU as the federation API serves it: v1–2 carry their event_id, later versions do not. */
export function servedPdu(pdu: Pdu, eventId: string, rules: RoomVersionRules): Pdu {
  return rules.eventFormat === 'v1' ? { ...pdu, event_id: eventId } : pdu;
}

export class MembershipHandshakes {
  constructor(
    private readonly store: Store,
    private readonly timeline: RoomTimeline,
    private readonly locks: RoomLocks,
    private readonly builder: EventBuilder,
    private readonly serverName: string,
    private readonly signingKey: SigningKey,
    private readonly invites: InviteChecks,
    /** Rooms using a policy server: the joiner's, leaver's or knocker's event is checked like any received one. */
    private readonly policy?: PolicyServerSignatures,
    /** Invites into rooms we are joined to enter the room at once (absent: they wait for the origin's /send). */
    private readonly inviteEntry?: InviteEntry,
  ) {}

  makeMembership(command: MakeMembershipCommand): Promise<MakeMembershipReply> {
    return replyOf(async () => {
      const { rules, current } = await this.roomWeAreIn(command.roomId, command.membership);
      const supported = command.supportedVersions ?? ['1'];
      if (command.membership !== 'leave' && !supported.includes(rules.id)) {
        throw incompatible(`room ${command.roomId} is version ${rules.id}, which ${command.origin} does not support`);
      }
      if (command.membership === 'knock' && !rules.knock) throw incompatible(`room version ${rules.id} does not allow knocking`);
      if (!isUserOf(command.userId, command.origin)) throw forbidden(`${command.origin} cannot act for ${command.userId}`);
      return this.locks.run(command.roomId, async () => {
        const content: Record<string, unknown> = { membership: command.membership };
        const draft = { roomId: command.roomId, sender: command.userId, type: 'm.room.member', stateKey: command.userId, content };
        let template = await this.builder.template(draft, rules, current);
        let verdict = await this.authorizeTemplate(template, rules, current, command.roomId);
        if (!verdict.allowed && command.membership === 'join' && rules.restrictedJoin) {
          const restricted = await this.restrictedJoin(command.userId, rules, current);
          const via = restricted && this.requireGrantable(restricted).authorisers[0];
          if (via) {
            content.join_authorised_via_users_server = via;
            template = await this.builder.template(draft, rules, current);
            verdict = await this.authorizeTemplate(template, rules, current, command.roomId, this.serverName);
          }
        }
        if (!verdict.allowed) throw forbidden(verdict.message);
        return { ok: true as const, roomVersion: rules.id, event: template as never };
      });
    });
  }

  sendMembership(command: SendMembershipCommand): Promise<SendMembershipReply> {
    return replyOf(async () => {
      const { rules } = await this.roomWeAreIn(command.roomId, command.membership);
      let pdu = this.checkMembershipEvent(command.event, command.eventId, rules, command.roomId, command.membership, command.origin);
      return this.locks.run(command.roomId, async () => {
        const via = pdu.content.join_authorised_via_users_server;
        if (command.membership === 'join' && via !== undefined && rules.restrictedJoin && !(await this.timeline.isSettled(command.eventId))) {
          await this.checkJoinToCountersign(pdu, rules, command.roomId);
          pdu = signEvent(pdu, rules, this.serverName, this.signingKey) as Pdu;
        }
        if (!(await this.timeline.isSettled(command.eventId))) {
          let evaluation;
          try {
            evaluation = await this.timeline.evaluate(command.eventId, pdu, rules);
          } catch (err) {
            if (err instanceof MissingStateError) throw badJson(`prev_events not known here: ${err.eventIds.join(', ')}`);
            throw err;
          }
          const current = await this.timeline.currentState(command.roomId);
          evaluation = await this.timeline.softFail(evaluation, current);
          // Check 7 as for any received event: without the policy server's signature the event is soft-failed and the handshake refused.
          if (this.policy) evaluation = await this.policy.softFailUnsigned(evaluation, current);
          pdu = evaluation.pdu;
          const committed = await this.timeline.commit(evaluation, { local: true });
          if (committed.status !== 'accepted') throw forbidden(committed.reason ?? `${command.membership} not allowed`);
        } else {
          const stored = await this.store.events.get(command.eventId);
          if (stored?.status !== 'accepted') throw forbidden(stored?.reason ?? `${command.membership} not allowed`);
          pdu = stored.pdu;
        }
        return { ok: true as const, roomVersion: rules.id, ...(await this.answer(command.roomId, command.eventId, command.membership, pdu, rules, command.omitMembers === true)) };
      });
    });
  }

  /**
   * A remote server invites one of our users: countersign; in a room we are joined to, the invite enters the room
   * as a received event would (invite-entry.ts); otherwise (or deferred) keep it as an outlier and tell chat-sync.
   */
  receiveInvite(command: ReceiveInviteCommand): Promise<ReceiveInviteReply> {
    return replyOf(async () => {
      if (!isSupportedRoomVersion(command.roomVersion)) throw incompatible(`room version ${JSON.stringify(command.roomVersion)} is not supported here`);
      const rules = roomVersionRules(command.roomVersion);
      const pdu = this.checkMembershipEvent(command.event, command.eventId, rules, command.roomId, 'invite', command.origin, false);
      if (!isUserOf(pdu.state_key, this.serverName)) throw forbidden(`${String(pdu.state_key)} is not a user of ${this.serverName}`);
      const room = await this.store.rooms.get(command.roomId);
      // Our countersignature and the event's ID follow the version: it must be the room's (the v1 endpoint, which
      // names none, is taken as "1", whose events are signed and identified as in "2").
      if (room && !sameEventRules(room.roomVersion, command.roomVersion)) throw badJson(`room ${command.roomId} is version ${room.roomVersion}, not ${command.roomVersion}`);
      const inviteRoomState = await this.invites.check(command.origin, pdu, command.eventId, rules, command.inviteRoomState);
      const signed = signEvent(pdu, rules, this.serverName, this.signingKey) as Pdu;
      if (this.inviteEntry && room && (await this.store.rooms.getJoinedServers(command.roomId)).includes(this.serverName)) {
        const entry = { roomId: command.roomId, eventId: command.eventId, roomVersion: rules.id, origin: command.origin, pdu: signed, inviteRoomState: inviteRoomState as never };
        if ((await this.inviteEntry.enter(entry)) === 'entered') return { ok: true as const, event: servedPdu(signed, command.eventId, rules) as never };
      }
      const event = toRoomEvent(signed, command.eventId);
      await this.store.events.append(recordFor(command.eventId, command.roomId, signed, event, 'accepted', undefined, true));
      await this.timeline.publish({
        eventId: command.eventId,
        roomId: command.roomId,
        outcome: 'accepted',
        local: false,
        event: logEventOf(command.eventId, command.roomId, signed, { invite_room_state: inviteRoomState as never }),
        stateDelta: {},
        joinedServers: [],
      });
      return { ok: true as const, event: servedPdu(signed, command.eventId, rules) as never };
    });
  }

  /**
   * The room's version and current state. Joins and knocks need a user of ours still joined: a room we have left has
   * stale state and extremities, and we would never hear of what follows (404, as Synapse answers). A leave is still
   * answered, authorized against our state (403 for a user not in the room, the spec's only refusal; Synapse does the
   * same): it only takes someone out, e.g. an invite one of our users sent being rejected after we all left
   * (test/adversarial/leave-rooms-we-left.spec.ts).
   */
  private async roomWeAreIn(roomId: string, membership: MembershipKind): Promise<{ rules: RoomVersionRules; current: Map<string, string> }> {
    const room = await this.store.rooms.get(roomId);
    const current = room && (await this.timeline.currentState(roomId));
    if (!room || !current) throw notFound(`room ${roomId} is not known here`);
    if (membership !== 'leave' && !(await this.store.rooms.getJoinedServers(roomId)).includes(this.serverName)) {
      throw notFound(`room ${roomId} is not an active room on this server: no user of ${this.serverName} is joined`);
    }
    return { rules: roomVersionRules(room.roomVersion), current };
  }

  /**
   * Before we countersign a join naming an authoriser (send_join; the remote may never have called make_join): the
   * authoriser is ours, the room is restricted, the joiner is in an allowed room as far as we know, and the authoriser
   * is joined and may invite — all against current state. Otherwise we would vouch for anyone.
   */
  private async checkJoinToCountersign(pdu: Pdu, rules: RoomVersionRules, roomId: string): Promise<void> {
    const via = pdu.content.join_authorised_via_users_server;
    if (typeof via !== 'string' || !isUserOf(via, this.serverName)) {
      throw grantRefused(`join_authorised_via_users_server ${String(via)} is not a user of ${this.serverName}; only its own server can authorise the join`);
    }
    const current = (await this.timeline.currentState(roomId))!;
    const restricted = await this.restrictedJoin(pdu.sender as string, rules, current);
    if (!restricted) throw forbidden(`room ${roomId} is not restricted: a join needs no authoriser`);
    if (restricted.alreadyMember) return;
    if (!this.requireGrantable(restricted).authorisers.includes(via)) {
      throw grantRefused(`${via} is not a joined member of ${roomId} able to invite`);
    }
  }

  /** The restricted-join verdict as the spec's errors: none of the allowed rooms known, or the joiner in none of them. */
  private requireGrantable(restricted: RestrictedJoin): RestrictedJoin {
    if (restricted.alreadyMember) return restricted;
    if (!restricted.allowedRoomKnown) throw new CommandRefusal('M_UNABLE_TO_AUTHORISE_JOIN', 'none of the rooms the join rules allow is known here', 400);
    if (!restricted.joinerAllowed) throw forbidden('the joining user is not joined to any room the join rules allow');
    if (restricted.authorisers.length === 0) throw grantRefused(`no user of ${this.serverName} in the room may invite`);
    return restricted;
  }

  private checkMembershipEvent(raw: unknown, eventId: string, rules: RoomVersionRules, roomId: string, membership: MembershipKind | 'invite', origin: string, senderIsTarget = true): Pdu {
    if (!isObject(raw)) throw badJson('event must be an object');
    const pdu = wireForm(raw, rules);
    try {
      validatePdu(pdu, rules);
    } catch (err) {
      throw badJson(describeError(err));
    }
    const computed = computeEventId(pdu, rules);
    if (computed !== eventId) throw badJson(`event ID is ${computed}, not ${eventId}`);
    if (pdu.room_id !== roomId) throw badJson(`event is for room ${String(pdu.room_id)}, not ${roomId}`);
    if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string') throw badJson('not an m.room.member event');
    if (pdu.content.membership !== membership) throw badJson(`membership is ${JSON.stringify(pdu.content.membership)}, not ${membership}`);
    if (senderIsTarget && pdu.state_key !== pdu.sender) throw badJson('state_key must be the sender');
    if (!isUserOf(pdu.sender, origin)) throw forbidden(`${origin} cannot send an event for ${pdu.sender}`);
    return pdu;
  }

  private async authorizeTemplate(template: Record<string, unknown>, rules: RoomVersionRules, current: Map<string, string>, roomId: string, signedBy?: string) {
    const graph = new EventGraph(this.store);
    const event = graph.add('$template', { ...template, signatures: signedBy ? { [signedBy]: { 'ed25519:template': 'x' } } : {} });
    const via = event.content.join_authorised_via_users_server;
    await graph.load(this.authIds(current, [event.sender, event.state_key, typeof via === 'string' ? via : undefined]));
    const verdict = authorizeEvent(event, authStateFromMap(current, graph.lookup, roomId), rules);
    return verdict.allowed ? { allowed: true as const, message: '' } : { allowed: false as const, message: verdict.reason.message };
  }

  /**
   * What a membership's auth check reads: create, power levels, join rules and the members of `users`, plus with
   * `localMembers` every member of this server (who may vouch for a restricted join). Not every member of the room:
   * loading them all made each make_join read the whole membership (issue 19).
   */
  private authIds(current: Map<string, string>, users: ReadonlyArray<string | undefined>, localMembers = false): string[] {
    const ids = [stateMapKey('m.room.create', ''), stateMapKey('m.room.power_levels', ''), stateMapKey('m.room.join_rules', ''), ...users.flatMap((u) => (u === undefined ? [] : [stateMapKey('m.room.member', u)]))]
      .map((key) => current.get(key))
      .filter((id): id is string => id !== undefined);
    if (localMembers) {
      for (const [key, id] of current) if (key.startsWith('m.room.member\u0000') && domainOf(key.slice('m.room.member\u0000'.length)) === this.serverName) ids.push(id);
    }
    return ids;
  }

  /**
   * Restricted rooms (undefined when the join rule is not restricted): whether the joiner is already invited or joined,
   * whether we know one of the rooms the join rules allow and the joiner is joined to one, and the local joined members
   * who may invite (who can vouch for the joiner).
   */
  private async restrictedJoin(userId: string, rules: RoomVersionRules, current: Map<string, string>): Promise<RestrictedJoin | undefined> {
    const graph = new EventGraph(this.store);
    await graph.load(this.authIds(current, [userId], true));
    const joinRules = graph.lookup(current.get(stateMapKey('m.room.join_rules', '')) ?? '');
    const rule = joinRules?.content.join_rule;
    if (rule !== 'restricted' && !(rule === 'knock_restricted' && rules.knockRestrictedJoin)) return undefined;
    const own = graph.lookup(current.get(stateMapKey('m.room.member', userId)) ?? '')?.content.membership;
    const alreadyMember = own === 'join' || own === 'invite';
    const allow = Array.isArray(joinRules!.content.allow) ? joinRules!.content.allow : [];
    let allowedRoomKnown = false;
    let joinerAllowed = false;
    for (const entry of allow) {
      if (!isObject(entry) || entry.type !== 'm.room_membership' || typeof entry.room_id !== 'string') continue;
      const other = await this.timeline.currentState(entry.room_id);
      if (!other) continue;
      allowedRoomKnown = true;
      const memberId = other.get(stateMapKey('m.room.member', userId));
      const member = memberId ? await this.store.events.get(memberId) : undefined;
      if (member?.roomId === entry.room_id && member.pdu.content.membership === 'join') joinerAllowed = true;
    }
    const create = graph.lookup(current.get(stateMapKey('m.room.create', '')) ?? '');
    const powerLevels = graph.lookup(current.get(stateMapKey('m.room.power_levels', '')) ?? '');
    const inviteLevel = powerLevelsOf(powerLevels, rules).invite;
    const authorisers: string[] = [];
    for (const [key, id] of current) {
      if (!key.startsWith('m.room.member\u0000')) continue;
      const member = graph.lookup(id);
      if (!member?.state_key || domainOf(member.state_key) !== this.serverName || member.content.membership !== 'join') continue;
      if (userPowerLevel(member.state_key, powerLevels, create, rules) >= inviteLevel) authorisers.push(member.state_key);
    }
    return { alreadyMember, allowedRoomKnown, joinerAllowed, authorisers };
  }

  /**
   * send_join: state before the event and the auth chain (with `omit_members`, the reduced form of
   * omitted-members.ts); send_knock: stripped state; send_leave: nothing.
   */
  private async answer(roomId: string, eventId: string, membership: MembershipKind, pdu: Pdu, rules: RoomVersionRules, omitMembers: boolean) {
    if (membership === 'knock') {
      const current = (await this.timeline.currentState(roomId))!;
      return { event: servedPdu(pdu, eventId, rules) as never, knockRoomState: (await strippedState(this.store, current)) as never };
    }
    if (membership === 'leave') return { event: servedPdu(pdu, eventId, rules) as never };
    const stored = await this.store.state.stateBeforeEvent(eventId);
    const before = stored ? toRoomStateMap(stored) : new Map<string, string>();
    const graph = new EventGraph(this.store);
    const join = graph.add(eventId, pdu);
    let stateIds: string[];
    let authChainIds: string[];
    let serversInRoom = await this.store.rooms.getJoinedServers(roomId);
    if (omitMembers) {
      const nonMembers = [...before].filter(([key]) => !key.startsWith('m.room.member\u0000')).map(([, id]) => id);
      await graph.load([...nonMembers, ...(needsHeroes(before) ? [...before.values()] : []), ...membersOfServer(before, domainOf(pdu.sender))]);
      // First for the kept state (heroes chosen among the loaded members), then again once its auth closure is loaded.
      const reduced = reduceJoinState(before, join, graph);
      await graph.loadAuthClosure([...reduced.stateIds, ...join.auth_events], roomId);
      ({ stateIds, authChainIds } = reduceJoinState(before, join, graph));
      serversInRoom = serversBeforeJoin(serversInRoom, before, join, graph);
    } else {
      stateIds = [...before.values()];
      await graph.loadAuthClosure([...stateIds, ...join.auth_events], roomId);
      authChainIds = [...authClosureOf([...stateIds, eventId], graph)].filter((id) => id !== eventId);
    }
    // The auth closure loaded every record served; read again only what it did not hold (issue 19: read twice).
    const unloaded = [...new Set([...stateIds, ...authChainIds])].filter((id) => !graph.record(id));
    const reread = unloaded.length > 0 ? await this.store.events.getMany(unloaded) : new Map<string, EventRecord>();
    const recordOf = (id: string) => graph.record(id) ?? reread.get(id);
    const served = (id: string) => {
      const record = recordOf(id);
      return record && servedPdu(pduWithRedaction(record, rules.id), id, rules);
    };
    return {
      event: servedPdu(pdu, eventId, rules) as never,
      state: stateIds.map(served).filter((p) => p !== undefined) as never,
      authChain: authChainIds.map(served).filter((p) => p !== undefined) as never,
      serversInRoom,
      membersOmitted: omitMembers,
    };
  }
}

function sameEventRules(roomVersion: string, claimed: string): boolean {
  const early = ['1', '2'];
  return roomVersion === claimed || (early.includes(roomVersion) && early.includes(claimed));
}

function authClosureOf(ids: string[], graph: EventGraph): Set<string> {
  return authClosure(ids, graph.lookup);
}
