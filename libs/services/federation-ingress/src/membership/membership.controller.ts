// Join, leave, knock and invite handshakes: ingress authenticates and checks the event, state-resolver decides.
import { Body, Controller, Get, HttpCode, Inject, Param, Put, Query, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import type { MembershipKind } from '@fedgate/bus';
import { verifyRemoteEvents } from '@fedgate/federation-client';
import { KEY_RING, SERVER_IDENTITY, type KeyRing, type ServerIdentity } from '@fedgate/platform';
import { isSupportedRoomVersion, isUserOf, serverNameOf, type JsonObject } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { RoomAccess } from '../auth/room-access';
import { XMatrixGuard } from '../auth/x-matrix.guard';
import type { IngressRequest } from '../federation-request';
import { StateResolverCommands } from './state-resolver-commands';


function versions(ver: string | string[] | undefined): string[] {
  return ver === undefined ? ['1'] : Array.isArray(ver) ? ver : [ver];
}

@Controller('_matrix/federation')
@UseGuards(XMatrixGuard)
@UseInterceptors(AuditReasonInterceptor)
export class MembershipController {
  constructor(
    private readonly commands: StateResolverCommands,
    private readonly access: RoomAccess,
    @Inject(KEY_RING) private readonly keyRing: KeyRing,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  @Get('v1/make_join/:roomId/:userId')
  makeJoin(@Param('roomId') roomId: string, @Param('userId') userId: string, @Query('ver') ver: string | string[] | undefined, @Req() request: IngressRequest) {
    return this.make('join', roomId, userId, request, versions(ver));
  }

  @Get('v1/make_leave/:roomId/:userId')
  makeLeave(@Param('roomId') roomId: string, @Param('userId') userId: string, @Req() request: IngressRequest) {
    return this.make('leave', roomId, userId, request);
  }

  @Get('v1/make_knock/:roomId/:userId')
  makeKnock(@Param('roomId') roomId: string, @Param('userId') userId: string, @Query('ver') ver: string | string[] | undefined, @Req() request: IngressRequest) {
    return this.make('knock', roomId, userId, request, versions(ver));
  }

  @Put('v2/send_join/:roomId/:eventId')
  async sendJoinV2(@Param('roomId') roomId: string, @Param('eventId') eventId: string, @Query('omit_members') omit: string | undefined, @Body() body: unknown, @Req() request: IngressRequest) {
    const reply = await this.send('join', roomId, eventId, body, request, omit === 'true');
    return {
      origin: this.identity.serverName,
      event: reply.event,
      state: reply.state ?? [],
      auth_chain: reply.authChain ?? [],
      members_omitted: reply.membersOmitted ?? false,
      ...(reply.serversInRoom ? { servers_in_room: reply.serversInRoom } : {}),
    };
  }

  @Put('v1/send_join/:roomId/:eventId')
  async sendJoinV1(@Param('roomId') roomId: string, @Param('eventId') eventId: string, @Body() body: unknown, @Req() request: IngressRequest) {
    const reply = await this.send('join', roomId, eventId, body, request, false);
    return [200, { origin: this.identity.serverName, event: reply.event, state: reply.state ?? [], auth_chain: reply.authChain ?? [] }];
  }

  @Put('v2/send_leave/:roomId/:eventId')
  async sendLeaveV2(@Param('roomId') roomId: string, @Param('eventId') eventId: string, @Body() body: unknown, @Req() request: IngressRequest) {
    await this.send('leave', roomId, eventId, body, request, false);
    return {};
  }

  @Put('v1/send_leave/:roomId/:eventId')
  async sendLeaveV1(@Param('roomId') roomId: string, @Param('eventId') eventId: string, @Body() body: unknown, @Req() request: IngressRequest) {
    await this.send('leave', roomId, eventId, body, request, false);
    return [200, {}];
  }

  @Put('v1/send_knock/:roomId/:eventId')
  async sendKnock(@Param('roomId') roomId: string, @Param('eventId') eventId: string, @Body() body: unknown, @Req() request: IngressRequest) {
    const reply = await this.send('knock', roomId, eventId, body, request, false);
    return { knock_room_state: reply.knockRoomState ?? [] };
  }

  @Put('v2/invite/:roomId/:eventId')
  @HttpCode(200)
  async invite(@Param('roomId') roomId: string, @Param('eventId') eventId: string, @Body() body: unknown, @Req() request: IngressRequest) {
    const b = (body ?? {}) as { event?: unknown; invite_room_state?: unknown; room_version?: unknown };
    if (typeof b.room_version !== 'string') throw MatrixError.badJson('room_version is required');
    if (!isSupportedRoomVersion(b.room_version)) {
      throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${b.room_version} is not supported`, { room_version: b.room_version });
    }
    return this.receiveInvite(roomId, eventId, b.event, b.room_version, b.invite_room_state, request);
  }

  /**
   * The v1 invite, still used by servers inviting into room versions 1 and 2: the body is the event itself (room
   * state in its `unsigned.invite_room_state`), the version is not given — the spec has the receiver assume "1"
   * or "2", which share the event format — and the answer is `[200, {event}]`.
   */
  @Put('v1/invite/:roomId/:eventId')
  @HttpCode(200)
  async inviteV1(@Param('roomId') roomId: string, @Param('eventId') eventId: string, @Body() body: unknown, @Req() request: IngressRequest) {
    const unsigned = (body as { unsigned?: { invite_room_state?: unknown } } | null)?.unsigned;
    return [200, await this.receiveInvite(roomId, eventId, body, '1', unsigned?.invite_room_state, request)];
  }

  private async receiveInvite(roomId: string, eventId: string, raw: unknown, roomVersion: string, roomState: unknown, request: IngressRequest) {
    const origin = request.federationOrigin!;
    const event = await this.checkedEvent(raw, roomVersion, roomId, eventId);
    if (event.type !== 'm.room.member' || (event.content as { membership?: unknown }).membership !== 'invite') throw MatrixError.badJson('Not an invite event');
    if (!isUserOf(event.state_key, this.identity.serverName)) throw MatrixError.badJson('The invited user is not on this server');
    if (!isUserOf(event.sender, origin)) throw MatrixError.forbidden(`The inviter is not on ${origin}`);
    const inviteRoomState = Array.isArray(roomState) ? (roomState as JsonObject[]) : [];
    const reply = await this.commands.receiveInvite({ roomId, eventId, roomVersion, origin, event, inviteRoomState });
    return { event: reply.event };
  }

  private async make(membership: MembershipKind, roomId: string, userId: string, request: IngressRequest, supportedVersions?: string[]) {
    const origin = request.federationOrigin!;
    const server = serverNameOf(userId);
    if (server === undefined) throw MatrixError.invalidParam(`${JSON.stringify(userId)} is not a user ID`);
    if (server !== origin) throw MatrixError.forbidden(`User ${userId} is not on ${origin}`);
    const reply = await this.commands.makeMembership({ roomId, userId, membership, origin, ...(supportedVersions ? { supportedVersions } : {}) });
    return { room_version: reply.roomVersion, event: reply.event };
  }

  private async send(membership: MembershipKind, roomId: string, eventId: string, body: unknown, request: IngressRequest, omitMembers: boolean) {
    const origin = request.federationOrigin!;
    const roomVersion = await this.access.reads.roomVersion(roomId);
    if (!roomVersion) throw MatrixError.notFound(`Unknown room ${roomId}`);
    // A restricted join naming one of our users is signed by us only after state-resolver re-checks it.
    const event = await this.checkedEvent(body, roomVersion, roomId, eventId, membership === 'join' ? this.identity.serverName : undefined);
    if (event.type !== 'm.room.member' || (event.content as { membership?: unknown }).membership !== membership) throw MatrixError.badJson(`Not a ${membership} event`);
    // A malformed membership (someone else's state_key) is bad input; a user of another server is not this origin's to send.
    if (typeof event.state_key !== 'string' || event.state_key !== event.sender) throw MatrixError.badJson(`The ${membership} event's state_key must be its sender`);
    if (!isUserOf(event.state_key, origin)) throw MatrixError.forbidden(`The ${membership} must be sent by its own user on ${origin}`);
    return this.commands.sendMembership({ roomId, eventId, membership, origin, event, ...(omitMembers ? { omitMembers } : {}) });
  }

  /** Shape, signatures and content hash; the event ID in the path must be the event's. */
  private async checkedEvent(event: unknown, roomVersion: string, roomId: string, eventId: string, countersignedBy?: string): Promise<JsonObject> {
    const checked = (await verifyRemoteEvents(this.keyRing, [event], { roomVersion, countersignedBy }))[0]!;
    if (!checked.ok) throw new MatrixError(checked.errcode === 'M_FORBIDDEN' ? 403 : 400, checked.errcode, checked.reason);
    if (checked.eventId !== eventId) throw MatrixError.badJson(`Event ID ${eventId} in the path is not the event's (${checked.eventId})`);
    if (checked.redacted) throw MatrixError.badJson('Content hash does not match the event');
    if (checked.pdu.room_id !== roomId) throw MatrixError.badJson(`Event is not for room ${roomId}`);
    return checked.pdu as unknown as JsonObject;
  }
}
