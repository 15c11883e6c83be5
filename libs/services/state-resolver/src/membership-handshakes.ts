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
import { computeEventId, isSupportedRoomVersion, roomVersionRules, signEvent, validatePdu, type Pdu, type RoomVersionRules, type SigningKey } from '@fedgate/protocol';
import { authStateFromMap, authorizeEvent, authClosure, domainOf, isObject, toRoomEvent, userPowerLevel, powerLevelsOf, stateMapKey } from '@fedgate/room-state';
import { pduWithRedaction, type Store } from '@fedgate/store';
import { badJson, CommandRefusal, describeError, forbidden, MissingStateError, notFound } from './errors';
import type { EventBuilder } from './event-builder';
import { EventGraph } from './event-graph';
import type { InviteChecks } from './invite-checks';
import { strippedState } from './local-events';
import type { RoomLocks } from './room-locks';
import { logEventOf, recordFor, type RoomTimeline } from './room-timeline';

const incompatible = (message: string) => new CommandRefusal('M_INCOMPATIBLE_ROOM_VERSION', message, 400);

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
  ) {}

  makeMembership(command: MakeMembershipCommand): Promise<MakeMembershipReply> {
    return replyOf(async () => {
      const { rules, current } = await this.roomWeAreIn(command.roomId);
      const supported = command.supportedVersions ?? ['1'];
      if (command.membership !== 'leave' && !supported.includes(rules.id)) {
        throw incompatible(`room ${command.roomId} is version ${rules.id}, which ${command.origin} does not support`);
      }
      if (command.membership === 'knock' && !rules.knock) throw incompatible(`room version ${rules.id} does not allow knocking`);
      if (domainOf(command.userId) !== command.origin) throw forbidden(`${command.origin} cannot act for ${command.userId}`);
      return this.locks.run(command.roomId, async () => {
        const content: Record<string, unknown> = { membership: command.membership };
        const draft = { roomId: command.roomId, sender: command.userId, type: 'm.room.member', stateKey: command.userId, content };
        let template = await this.builder.template(draft, rules, current);
        let verdict = await this.authorizeTemplate(template, rules, current, command.roomId);
        if (!verdict.allowed && command.membership === 'join' && rules.restrictedJoin) {
          const via = await this.restrictedJoinAuthoriser(command.userId, rules, current);
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
      const { rules } = await this.roomWeAreIn(command.roomId);
      let pdu = this.checkMembershipEvent(command.event, command.eventId, rules, command.roomId, command.membership, command.origin);
      const via = pdu.content.join_authorised_via_users_server;
      if (command.membership === 'join' && typeof via === 'string' && domainOf(via) === this.serverName) {
        pdu = signEvent(pdu, rules, this.serverName, this.signingKey) as Pdu;
      }
      return this.locks.run(command.roomId, async () => {
        if (!(await this.timeline.isSettled(command.eventId))) {
          let evaluation;
          try {
            evaluation = await this.timeline.evaluate(command.eventId, pdu, rules);
          } catch (err) {
            if (err instanceof MissingStateError) throw badJson(`prev_events not known here: ${err.eventIds.join(', ')}`);
            throw err;
          }
          evaluation = await this.timeline.softFail(evaluation);
          const committed = await this.timeline.commit(evaluation, { local: true });
          if (committed.status !== 'accepted') throw forbidden(committed.reason ?? `${command.membership} not allowed`);
        } else {
          const stored = await this.store.events.get(command.eventId);
          if (stored?.status !== 'accepted') throw forbidden(stored?.reason ?? `${command.membership} not allowed`);
          pdu = stored.pdu;
        }
        return { ok: true as const, roomVersion: rules.id, ...(await this.answer(command.roomId, command.eventId, command.membership, pdu, rules)) };
      });
    });
  }

  /** A remote server invites one of our users: countersign, keep as an outlier, tell chat-sync. */
  receiveInvite(command: ReceiveInviteCommand): Promise<ReceiveInviteReply> {
    return replyOf(async () => {
      if (!isSupportedRoomVersion(command.roomVersion)) throw incompatible(`room version ${JSON.stringify(command.roomVersion)} is not supported here`);
      const rules = roomVersionRules(command.roomVersion);
      const pdu = this.checkMembershipEvent(command.event, command.eventId, rules, command.roomId, 'invite', command.origin, false);
      if (domainOf(pdu.state_key as string) !== this.serverName) throw forbidden(`${String(pdu.state_key)} is not a user of ${this.serverName}`);
      const inviteRoomState = await this.invites.check(command.origin, pdu, command.eventId, rules, command.inviteRoomState);
      const signed = signEvent(pdu, rules, this.serverName, this.signingKey) as Pdu;
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

  private async roomWeAreIn(roomId: string): Promise<{ rules: RoomVersionRules; current: Map<string, string> }> {
    const room = await this.store.rooms.get(roomId);
    const current = room && (await this.timeline.currentState(roomId));
    if (!room || !current) throw notFound(`room ${roomId} is not known here`);
    return { rules: roomVersionRules(room.roomVersion), current };
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
    if (domainOf(pdu.sender) !== origin) throw forbidden(`${origin} cannot send an event for ${pdu.sender}`);
    return pdu;
  }

  private async authorizeTemplate(template: Record<string, unknown>, rules: RoomVersionRules, current: Map<string, string>, roomId: string, signedBy?: string) {
    const graph = new EventGraph(this.store);
    const event = graph.add('$template', { ...template, signatures: signedBy ? { [signedBy]: { 'ed25519:template': 'x' } } : {} });
    await graph.load(this.authIds(current));
    const verdict = authorizeEvent(event, authStateFromMap(current, graph.lookup, roomId), rules);
    return verdict.allowed ? { allowed: true as const, message: '' } : { allowed: false as const, message: verdict.reason.message };
  }

  private authIds(current: Map<string, string>): string[] {
    const ids: string[] = [];
    for (const [key, id] of current) {
      if (key.startsWith('m.room.member\u0000') || key === stateMapKey('m.room.create', '') || key === stateMapKey('m.room.power_levels', '') || key === stateMapKey('m.room.join_rules', '')) ids.push(id);
    }
    return ids;
  }

  /**
   * Restricted rooms: a local joined member who may invite vouches for the joiner when the joiner is joined to
   * one of the rooms the join rules allow (as far as this server knows).
   */
  private async restrictedJoinAuthoriser(userId: string, rules: RoomVersionRules, current: Map<string, string>): Promise<string | undefined> {
    const graph = new EventGraph(this.store);
    await graph.load(this.authIds(current));
    const joinRules = graph.lookup(current.get(stateMapKey('m.room.join_rules', '')) ?? '');
    const rule = joinRules?.content.join_rule;
    if (rule !== 'restricted' && !(rule === 'knock_restricted' && rules.knockRestrictedJoin)) return undefined;
    const allow = Array.isArray(joinRules!.content.allow) ? joinRules!.content.allow : [];
    let allowed = false;
    for (const entry of allow) {
      if (!isObject(entry) || entry.type !== 'm.room_membership' || typeof entry.room_id !== 'string') continue;
      const other = await this.timeline.currentState(entry.room_id);
      const memberId = other?.get(stateMapKey('m.room.member', userId));
      const member = memberId ? await this.store.events.get(memberId) : undefined;
      if (member?.pdu.content.membership === 'join') allowed = true;
    }
    if (!allowed) return undefined;
    const create = graph.lookup(current.get(stateMapKey('m.room.create', '')) ?? '');
    const powerLevels = graph.lookup(current.get(stateMapKey('m.room.power_levels', '')) ?? '');
    const inviteLevel = powerLevelsOf(powerLevels, rules).invite;
    for (const [key, id] of current) {
      if (!key.startsWith('m.room.member\u0000')) continue;
      const member = graph.lookup(id);
      if (!member?.state_key || domainOf(member.state_key) !== this.serverName || member.content.membership !== 'join') continue;
      if (userPowerLevel(member.state_key, powerLevels, create, rules) >= inviteLevel) return member.state_key;
    }
    return undefined;
  }

  /** send_join: state before the event and the auth chain; send_knock: stripped state; send_leave: nothing. */
  private async answer(roomId: string, eventId: string, membership: MembershipKind, pdu: Pdu, rules: RoomVersionRules) {
    if (membership === 'knock') {
      const current = (await this.timeline.currentState(roomId))!;
      return { event: servedPdu(pdu, eventId, rules) as never, knockRoomState: (await strippedState(this.store, current)) as never };
    }
    if (membership === 'leave') return { event: servedPdu(pdu, eventId, rules) as never };
    const before = await this.store.state.stateBeforeEvent(eventId);
    const stateIds = [...(before?.values() ?? [])];
    const graph = new EventGraph(this.store);
    await graph.loadAuthClosure([...stateIds, eventId], roomId);
    const chain = authClosureOf([...stateIds, eventId], graph);
    const records = await this.store.events.getMany([...new Set([...stateIds, ...chain])]);
    const served = (id: string) => records.get(id) && servedPdu(pduWithRedaction(records.get(id)!, rules.id), id, rules);
    return {
      event: servedPdu(pdu, eventId, rules) as never,
      state: stateIds.map(served).filter((p) => p !== undefined) as never,
      authChain: [...chain].map(served).filter((p) => p !== undefined) as never,
      serversInRoom: await this.store.rooms.getJoinedServers(roomId),
      membersOmitted: false,
    };
  }
}

function authClosureOf(ids: string[], graph: EventGraph): Set<string> {
  return authClosure(ids, graph.lookup);
}
