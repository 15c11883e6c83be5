// Rooms for an application service's users: create, membership, messages, state, redactions, reads.
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Put, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { STORE, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import { EventVisibility, parseStateTupleKey, type EventRecord } from '@fedgate/store';
import { RoomVisibility } from '../lifecycle/room-visibility';
import { RoomActions, assertRoomId } from '../rooms/room-actions';
import { RoomCommands } from '../rooms/room-commands';
import { RoomView, type CurrentState } from '../rooms/room-view';
import { ThirdPartyInviteSender, isThirdPartyInviteBody } from '../third-party-invites/third-party-invite-sender';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';
import { CLIENT_PATHS, queryList } from './paths';

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class RoomsController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly actions: RoomActions,
    private readonly commands: RoomCommands,
    private readonly view: RoomView,
    private readonly visibility: RoomVisibility,
    private readonly thirdPartyInvites: ThirdPartyInviteSender,
  ) {}

  @Post('createRoom')
  @HttpCode(200)
  async createRoom(@CurrentRequester() requester: Requester, @Body() body: unknown) {
    const thirdPartyInvites = this.thirdPartyInvites.parseCreateRoomInvites(body);
    const created = await this.actions.createRoom(requester, body);
    await this.thirdPartyInvites.inviteToNewRoom(requester, created.room_id, thirdPartyInvites);
    return created;
  }

  @Post('join/:roomIdOrAlias')
  @HttpCode(200)
  join(@CurrentRequester() requester: Requester, @Param('roomIdOrAlias') target: string, @Query() query: Record<string, unknown>, @Body() body: unknown) {
    return this.actions.join(requester, target, [...queryList(query.via), ...queryList(query.server_name)], body);
  }

  @Post('knock/:roomIdOrAlias')
  @HttpCode(200)
  knock(@CurrentRequester() requester: Requester, @Param('roomIdOrAlias') target: string, @Query() query: Record<string, unknown>, @Body() body: unknown) {
    return this.actions.knock(requester, target, [...queryList(query.via), ...queryList(query.server_name)], body);
  }

  @Post('rooms/:roomId/join')
  @HttpCode(200)
  joinRoom(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Query() query: Record<string, unknown>, @Body() body: unknown) {
    assertRoomId(roomId);
    return this.actions.join(requester, roomId, [...queryList(query.via), ...queryList(query.server_name)], body);
  }

  @Post('rooms/:roomId/:action')
  @HttpCode(200)
  membership(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Param('action') action: string, @Body() body: unknown) {
    if (action === 'forget') return this.visibility.forget(requester, roomId);
    if (!['invite', 'leave', 'kick', 'ban', 'unban'].includes(action)) throw MatrixError.unrecognized();
    if (action === 'invite' && isThirdPartyInviteBody(body)) return this.thirdPartyInvites.invite(requester, roomId, body);
    return this.actions.changeMembership(requester, roomId, action as 'invite', body);
  }

  @Get('joined_rooms')
  async joinedRooms(@CurrentRequester() requester: Requester) {
    return { joined_rooms: await this.store.memberships.roomsOf(requester.userId, 'join') };
  }

  @Get('rooms/:roomId/joined_members')
  async joinedMembers(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string) {
    const state = await this.readableState(requester, roomId);
    const joined: Record<string, { display_name?: string; avatar_url?: string }> = {};
    for (const member of RoomView.members(state, 'join')) {
      const content = member.pdu.content as { displayname?: unknown; avatar_url?: unknown };
      joined[member.stateKey ?? ''] = {
        ...(typeof content.displayname === 'string' ? { display_name: content.displayname } : {}),
        ...(typeof content.avatar_url === 'string' ? { avatar_url: content.avatar_url } : {}),
      };
    }
    return { joined };
  }

  @Get('rooms/:roomId/members')
  async members(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Query() query: Record<string, unknown>) {
    const state = await this.readableState(requester, roomId);
    const only = typeof query.membership === 'string' ? query.membership : undefined;
    const not = typeof query.not_membership === 'string' ? query.not_membership : undefined;
    const chunk = RoomView.members(state)
      .filter((m) => {
        const membership = (m.pdu.content as { membership?: unknown }).membership;
        return (only === undefined || membership === only) && (not === undefined || membership !== not);
      })
      .map((m) => this.view.clientEvent(m));
    return { chunk };
  }

  @Get('rooms/:roomId/state')
  async state(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string) {
    const state = await this.visibility.readableState(requester, roomId, { whenLeft: true });
    return this.view.clientEvents([...state.events.values()]);
  }

  /** `state/{type}`, `state/{type}/` and `state/{type}/{stateKey}`: a wildcard, since the router drops trailing slashes. */
  @Get('rooms/:roomId/state/*')
  async stateEvent(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Req() request: FastifyRequest, @Query() query: Record<string, unknown>) {
    const { type, stateKey } = stateTupleFromPath(request);
    const state = await this.visibility.readableState(requester, roomId, { whenLeft: true });
    for (const [key, record] of state.events) {
      const tuple = parseStateTupleKey(key);
      if (tuple.type === type && tuple.stateKey === stateKey) {
        const served = await this.view.servedEvent(record);
        return query.format === 'event' ? served : served.content;
      }
    }
    throw MatrixError.notFound('Event not found.');
  }

  @Put('rooms/:roomId/state/*')
  putState(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Req() request: FastifyRequest, @Body() body: unknown) {
    const { type, stateKey } = stateTupleFromPath(request);
    return this.actions.putState(requester, roomId, type, stateKey, body);
  }

  @Put('rooms/:roomId/send/:eventType/:txnId')
  send(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Param('eventType') type: string, @Param('txnId') txnId: string, @Body() body: unknown) {
    return this.actions.send(requester, roomId, type, txnId, body);
  }

  @Put('rooms/:roomId/redact/:eventId/:txnId')
  redact(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Param('eventId') eventId: string, @Param('txnId') txnId: string, @Body() body: unknown) {
    return this.actions.redact(requester, roomId, eventId, txnId, body);
  }

  @Get('rooms/:roomId/event/:eventId')
  async event(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Param('eventId') eventId: string) {
    await this.readableState(requester, roomId);
    const record = await this.view.event(eventId);
    // The spec answers 404 alike for an event that is not there and one the user may not see.
    if (!record || record.roomId !== roomId || record.status !== 'accepted') throw MatrixError.notFound('Event not found.');
    const visibility = this.visibleTo(requester);
    if (!(await visibility.mayView(record))) throw MatrixError.notFound('Event not found or not visible to you.');
    return (await this.view.clientEventsFor(visibility, [record]))[0];
  }

  @Get('rooms/:roomId/messages')
  async messages(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Query() query: Record<string, unknown>) {
    await this.readableState(requester, roomId);
    const dir = query.dir ?? 'b';
    if (dir !== 'b' && dir !== 'f') throw MatrixError.invalidParam('dir must be b or f');
    const limit = query.limit === undefined ? 10 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 0) throw MatrixError.invalidParam('limit must be a non-negative integer');
    const capped = Math.min(limit, 1000);
    const from = query.from === undefined ? undefined : parseDepthToken(query.from);
    const extremities = await this.store.events.getMany(await this.store.rooms.getForwardExtremities(roomId));
    const top = Math.max(0, ...[...extremities.values()].map((e) => e.depth));
    let chunk;
    if (dir === 'b') {
      const start = from ?? top;
      const read = () => this.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: start, limit: capped, excludeRejected: true });
      let records = await read();
      if (capped > 0 && records.length < capped && historyMayBeMissing(records)) {
        // The page reaches the oldest events held here: the servers in the room may have earlier ones.
        const fetched = await this.commands.backfill(roomId, start + 1, Math.max(capped, 10));
        if (fetched.ok && fetched.stored > 0) records = await read();
      }
      chunk = await this.visibleOnly(requester, records.filter((r) => r.status === 'accepted' && !r.outlier));
      const lowest = records.length ? records[records.length - 1].depth : start;
      const end = records.length < capped ? undefined : `d${lowest - 1}`;
      return { start: `d${start}`, ...(end !== undefined && lowest > 0 ? { end } : {}), chunk: await this.view.clientEventsFor(this.visibleTo(requester), chunk) };
    }
    const start = from ?? 0;
    const records = (await this.store.events.byDepthRange({ roomId, minDepth: start, maxDepth: top, limit: 100_000, excludeRejected: true })).reverse().slice(0, capped);
    chunk = await this.visibleOnly(requester, records.filter((r) => r.status === 'accepted' && !r.outlier));
    const highest = records.length ? records[records.length - 1].depth : start;
    const end = records.length < capped ? undefined : `d${highest + 1}`;
    return { start: `d${start}`, ...(end !== undefined ? { end } : {}), chunk: await this.view.clientEventsFor(this.visibleTo(requester), chunk) };
  }

  private visibleTo(requester: Requester): EventVisibility {
    return new EventVisibility(this.store, { userId: requester.userId });
  }

  /** The events history visibility lets the user see, by their membership at each event (the rest left out). */
  private async visibleOnly(requester: Requester, records: readonly EventRecord[]): Promise<EventRecord[]> {
    const visibility = this.visibleTo(requester);
    const out: EventRecord[] = [];
    for (const record of records) if (await visibility.mayView(record)) out.push(record);
    return out;
  }

  /** Reads need the user to be in the room (or the room to be world-readable). */
  private async readableState(requester: Requester, roomId: string): Promise<CurrentState> {
    return this.visibility.readableState(requester, roomId, { whenLeft: false });
  }
}

/** A page without the room's create event in the timeline may have history before it, held elsewhere. */
function historyMayBeMissing(records: readonly { type: string; stateKey?: string; outlier: boolean }[]): boolean {
  return !records.some((r) => r.type === 'm.room.create' && r.stateKey === '' && !r.outlier);
}

function parseDepthToken(token: unknown): number {
  const match = typeof token === 'string' ? /^d(\d+)$/.exec(token) : null;
  if (!match) throw MatrixError.invalidParam(`Invalid pagination token ${JSON.stringify(token)}`);
  return Number(match[1]);
}

/** The event type and state key from the raw path after `/state/` (each percent-decoded on its own). */
function stateTupleFromPath(request: FastifyRequest): { type: string; stateKey: string } {
  const rawPath = request.url.split('?')[0];
  const rest = rawPath.slice(rawPath.indexOf('/state/') + '/state/'.length);
  const slash = rest.indexOf('/');
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw MatrixError.invalidParam('Malformed percent-encoding in the path');
    }
  };
  const type = decode(slash < 0 ? rest : rest.slice(0, slash));
  if (type.length === 0) throw MatrixError.unrecognized();
  return { type, stateKey: slash < 0 ? '' : decode(rest.slice(slash + 1)) };
}
