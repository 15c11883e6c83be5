// What an application service's users do to rooms, as state-resolver commands: create, membership,
// messages, state, redactions. Answers as the client-server API does.
import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { parseRoomId, parseUserId } from '@fedgate/protocol';
import type { FedgateConfig } from '@fedgate/config';
import { FEDGATE_CONFIG, MatrixError } from '@fedgate/service-kit';
import type { EventRecord } from '@fedgate/store';
import type { Requester } from '../client-server/requester';
import { AliasDirectory } from '../directory/alias-directory';
import { planCreateRoom } from './create-room-plan';
import { RoomCommands } from './room-commands';
import { RoomView } from './room-view';
import { tombstoneServers } from './tombstones';

type MembershipChange = 'invite' | 'leave' | 'ban' | 'kick' | 'unban';

@Injectable()
export class RoomActions {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly commands: RoomCommands,
    private readonly view: RoomView,
    private readonly aliases: AliasDirectory,
    @Inject(FEDGATE_CONFIG) private readonly config: FedgateConfig,
  ) {}

  async createRoom(requester: Requester, body: unknown): Promise<{ room_id: string; room_alias?: string }> {
    const { userId } = requester;
    const profile = await this.store.profiles.get(userId);
    const plan = planCreateRoom(body, userId, this.identity.serverName, { displayname: profile?.displayname, avatar_url: profile?.avatarUrl }, this.config.rooms.defaultVersion);
    if (plan.alias) {
      this.aliases.assertMayCreate(requester, plan.alias);
      if (await this.store.aliases.get(plan.alias)) throw new MatrixError(400, 'M_ROOM_IN_USE', `Room alias ${plan.alias} already taken`);
    }
    // A proposal: from v12 the room ID is the create event's hash, and state-resolver may pick another; the reply says.
    const proposedRoomId = `!${randomBytes(12).toString('base64url')}:${this.identity.serverName}`;
    const created = await this.commands.createEvent({ roomId: proposedRoomId, sender: userId, type: 'm.room.create', stateKey: '', content: plan.createContent });
    const roomId = created.roomId;
    if (plan.alias) {
      const stored = await this.store.aliases.create({ alias: plan.alias, roomId, servers: [this.identity.serverName], creator: userId, createdTs: Date.now() });
      if (!stored.created) throw new MatrixError(400, 'M_ROOM_IN_USE', `Room alias ${plan.alias} already taken`);
    }
    for (const event of plan.events) {
      const { eventId } = await this.commands.createEvent({ roomId, sender: userId, type: event.type, stateKey: event.stateKey, content: event.content as never });
      if (event.type === 'm.room.member' && event.stateKey !== undefined) await this.recordLocalMembership(event.stateKey, roomId, String(event.content.membership), eventId);
    }
    // The directory lists only what was published (`visibility`, default private).
    await this.store.roomDirectory.set({ roomId, visibility: plan.visibility, appServiceId: requester.service.id, updatedTs: Date.now() });
    return plan.alias ? { room_id: roomId, room_alias: plan.alias } : { room_id: roomId };
  }

  /** A room ID or alias from a join or knock path, with the servers to try: `via` first, then the alias's. */
  private async resolveRoomTarget(roomIdOrAlias: string, via: string[]): Promise<{ roomId: string; servers: string[] }> {
    if (roomIdOrAlias.startsWith('#')) {
      const resolved = await this.aliases.resolve(roomIdOrAlias);
      return { roomId: resolved.roomId, servers: [...via, ...resolved.servers] };
    }
    if (!roomIdOrAlias.startsWith('!')) throw MatrixError.invalidParam(`${JSON.stringify(roomIdOrAlias)} is not a room ID or alias`);
    assertRoomId(roomIdOrAlias);
    return { roomId: roomIdOrAlias, servers: [...via] };
  }

  /** `POST /join/{roomIdOrAlias}` and `POST /rooms/{roomId}/join`. */
  async join(requester: Requester, roomIdOrAlias: string, via: string[], body: unknown): Promise<{ room_id: string }> {
    const content = membershipContent(body, 'join');
    const { roomId, servers } = await this.resolveRoomTarget(roomIdOrAlias, via);
    if ((await this.store.chatLifecycle.getRoomDeletion(roomId))?.blocked) throw MatrixError.forbidden(`Room ${roomId} has been blocked on this server`);
    const profile = await this.store.profiles.get(requester.userId);
    if (profile?.displayname) content.displayname = profile.displayname;
    if (profile?.avatarUrl) content.avatar_url = profile.avatarUrl;
    const invite = await this.pendingInviteServers(requester.userId, roomId);
    const tombstones = await tombstoneServers(this.store, this.view, requester.userId, roomId);
    const candidates = unique([...servers, ...invite, ...tombstones, ...serverOfRoomId(roomId)]).filter((s) => s !== this.identity.serverName);
    // A room we left with no one else to ask (e.g. every member of a local room left) is joined locally again.
    if ((await this.isInRoom(roomId)) || (candidates.length === 0 && (await this.hasRoomState(roomId)))) {
      const { eventId } = await this.commands.createEvent({ roomId, sender: requester.userId, type: 'm.room.member', stateKey: requester.userId, content });
      await this.recordLocalMembership(requester.userId, roomId, 'join', eventId);
      return { room_id: roomId };
    }
    if (candidates.length === 0) throw MatrixError.notFound(`No known servers to join ${roomId} through`);
    const joined = await this.commands.remoteMembership(roomId, requester.userId, 'join', candidates, content);
    await this.recordLocalMembership(requester.userId, joined.roomId, 'join', joined.eventId);
    return { room_id: joined.roomId };
  }

  /** `POST /knock/{roomIdOrAlias}`: a local event in a room we are in, otherwise make_knock/send_knock through a resident server. */
  async knock(requester: Requester, roomIdOrAlias: string, via: string[], body: unknown): Promise<{ room_id: string }> {
    const content = membershipContent(body, 'knock');
    const { roomId, servers } = await this.resolveRoomTarget(roomIdOrAlias, via);
    if (await this.isInRoom(roomId)) {
      const { eventId } = await this.commands.createEvent({ roomId, sender: requester.userId, type: 'm.room.member', stateKey: requester.userId, content: content as never });
      await this.recordLocalMembership(requester.userId, roomId, 'knock', eventId);
      return { room_id: roomId };
    }
    const candidates = unique([...servers, ...serverOfRoomId(roomId)]).filter((s) => s !== this.identity.serverName);
    if (candidates.length === 0) throw MatrixError.notFound(`No known servers to knock on ${roomId} through`);
    const knocked = await this.commands.remoteMembership(roomId, requester.userId, 'knock', candidates, content as never);
    await this.recordLocalMembership(requester.userId, knocked.roomId, 'knock', knocked.eventId);
    return { room_id: knocked.roomId };
  }

  /** invite, leave, kick, ban, unban. */
  async changeMembership(requester: Requester, roomId: string, change: MembershipChange, body: unknown): Promise<Record<string, never>> {
    assertRoomId(roomId);
    const fields = asObject(body ?? {});
    const reason = fields.reason;
    if (reason !== undefined && typeof reason !== 'string') throw MatrixError.badJson('reason must be a string');
    let target = requester.userId;
    if (change !== 'leave') {
      if (typeof fields.user_id !== 'string') throw MatrixError.missingParam('user_id is required');
      target = fields.user_id;
      try {
        parseUserId(target);
      } catch {
        throw MatrixError.invalidParam(`${JSON.stringify(target)} is not a valid user ID`);
      }
    }
    const membership = change === 'kick' || change === 'unban' ? 'leave' : change;
    const content: Record<string, unknown> = { membership };
    if (reason !== undefined) content.reason = reason;
    if (change === 'invite' && fields.is_direct === true) content.is_direct = true;

    if (!(await this.isInRoom(roomId))) {
      // Rejecting an invite to a room this server is not in goes through the inviting server.
      if (change === 'leave') {
        const servers = (await this.pendingInviteServers(requester.userId, roomId)).filter((s) => s !== this.identity.serverName);
        if (servers.length > 0) {
          const left = await this.commands.remoteMembership(roomId, requester.userId, 'leave', servers, content as never);
          await this.recordLocalMembership(requester.userId, roomId, 'leave', left.eventId);
          return {};
        }
      }
      throw MatrixError.forbidden(`You are not in room ${roomId}`);
    }
    if (change === 'unban' && (await this.view.membership(roomId, target)) !== 'ban') {
      throw MatrixError.forbidden(`${target} is not banned from ${roomId}`);
    }
    if (change === 'kick' && !['join', 'invite', 'knock'].includes((await this.view.membership(roomId, target)) ?? '')) {
      throw MatrixError.forbidden(`${target} is not a member of ${roomId}`);
    }
    const { eventId } = await this.commands.createEvent({ roomId, sender: requester.userId, type: 'm.room.member', stateKey: target, content: content as never });
    await this.recordLocalMembership(target, roomId, membership, eventId);
    return {};
  }

  async send(requester: Requester, roomId: string, type: string, txnId: string, body: unknown): Promise<{ event_id: string }> {
    assertRoomId(roomId);
    const content = asObject(body);
    const { eventId } = await this.commands.createEvent({ roomId, sender: requester.userId, type, content: content as never, txnId: `send/${roomId}/${txnId}` });
    return { event_id: eventId };
  }

  async putState(requester: Requester, roomId: string, type: string, stateKey: string, body: unknown): Promise<{ event_id: string }> {
    assertRoomId(roomId);
    const content = asObject(body);
    if (type === 'm.room.member') {
      const membership = content.membership;
      if (typeof membership !== 'string') throw MatrixError.badJson('m.room.member content needs a membership');
    }
    const { eventId } = await this.commands.createEvent({ roomId, sender: requester.userId, type, stateKey, content: content as never });
    if (type === 'm.room.member' && this.isLocalUser(stateKey)) await this.recordLocalMembership(stateKey, roomId, String(content.membership), eventId);
    return { event_id: eventId };
  }

  async redact(requester: Requester, roomId: string, eventId: string, txnId: string, body: unknown): Promise<{ event_id: string }> {
    assertRoomId(roomId);
    const fields = asObject(body ?? {});
    if (fields.reason !== undefined && typeof fields.reason !== 'string') throw MatrixError.badJson('reason must be a string');
    const room = await this.view.room(roomId);
    if (!room) throw MatrixError.notFound(`Unknown room ${roomId}`);
    const content: Record<string, unknown> = fields.reason === undefined ? {} : { reason: fields.reason };
    // v11+ carry `redacts` in the content; older versions at the top level (state-resolver puts it there from the content).
    content.redacts = eventId;
    const created = await this.commands.createEvent({ roomId, sender: requester.userId, type: 'm.room.redaction', content: content as never, txnId: `redact/${roomId}/${txnId}` });
    return { event_id: created.eventId };
  }

  /**
   * Whether this server is joined to the room (so it can build events there itself). A room every local
   * user left keeps its stale state here; joining it again has to go through a resident server.
   */
  async isInRoom(roomId: string): Promise<boolean> {
    if (!(await this.hasRoomState(roomId))) return false;
    return (await this.store.rooms.getJoinedServers(roomId)).includes(this.identity.serverName);
  }

  private async hasRoomState(roomId: string): Promise<boolean> {
    const room = await this.view.room(roomId);
    return room?.currentStateId != null && (await this.store.rooms.getForwardExtremities(roomId)).length > 0;
  }

  private async pendingInviteServers(userId: string, roomId: string): Promise<string[]> {
    const invited = await this.store.memberships.roomsOf(userId, 'invite');
    if (!invited.includes(roomId)) return [];
    // A room we are not in has no current state here: the invite is kept as an outlier.
    const member = (await this.view.stateEvent(roomId, 'm.room.member', userId)) ?? (await this.storedInvite(userId, roomId));
    const sender = member?.pdu.sender;
    return sender ? [sender.slice(sender.indexOf(':') + 1)] : [];
  }

  private async storedInvite(userId: string, roomId: string): Promise<EventRecord | undefined> {
    const events = await this.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: Number.MAX_SAFE_INTEGER, limit: 1000, excludeRejected: true });
    return events.find((e) => e.type === 'm.room.member' && e.stateKey === userId && (e.pdu.content as { membership?: unknown }).membership === 'invite');
  }

  private isLocalUser(userId: string): boolean {
    return userId.endsWith(`:${this.identity.serverName}`);
  }

  private async recordLocalMembership(userId: string, roomId: string, membership: string, eventId: string): Promise<void> {
    if (this.isLocalUser(userId)) await this.store.memberships.set(userId, roomId, membership, eventId);
  }
}

export function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Buffer.isBuffer(body)) throw MatrixError.badJson('Content must be a JSON object');
  return body as Record<string, unknown>;
}

function membershipContent(body: unknown, membership: string): Record<string, unknown> {
  const fields = body === undefined ? {} : asObject(body);
  const content: Record<string, unknown> = { membership };
  if (typeof fields.reason === 'string') content.reason = fields.reason;
  return content;
}

export function assertRoomId(roomId: string): void {
  try {
    parseRoomId(roomId);
  } catch {
    throw MatrixError.invalidParam(`${JSON.stringify(roomId)} is not a valid room ID`);
  }
}

function serverOfRoomId(roomId: string): string[] {
  const colon = roomId.indexOf(':');
  return colon < 0 ? [] : [roomId.slice(colon + 1)];
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
