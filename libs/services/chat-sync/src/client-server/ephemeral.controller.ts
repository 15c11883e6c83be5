// Typing notifications, read receipts and presence of an AS's users.
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Put, UseGuards } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import { AccountData } from '../account-data/account-data';
import { EphemeralSender } from '../ephemeral/ephemeral-sender';
import { PRIVATE_RECEIPT_TYPE, PrivateReceipts } from '../ephemeral/private-receipts';
import { RoomView } from '../rooms/room-view';
import { asObject, assertRoomId } from '../rooms/room-actions';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';
import { CLIENT_PATHS } from './paths';

const RECEIPT_TYPES = ['m.read', 'm.read.private', 'm.fully_read'];

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class EphemeralController {
  constructor(
    private readonly sender: EphemeralSender,
    private readonly view: RoomView,
    private readonly accountData: AccountData,
    private readonly privateReceipts: PrivateReceipts,
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  @Put('rooms/:roomId/typing/:userId')
  async typing(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Param('userId') userId: string, @Body() body: unknown) {
    assertRoomId(roomId);
    if (userId !== requester.userId) throw MatrixError.forbidden('Cannot set another user\'s typing state');
    const fields = asObject(body);
    if (typeof fields.typing !== 'boolean') throw MatrixError.badJson('typing must be a boolean');
    if (fields.timeout !== undefined && (typeof fields.timeout !== 'number' || fields.timeout < 0)) throw MatrixError.badJson('timeout must be a number of milliseconds');
    await this.assertJoined(requester, roomId);
    const timeout = fields.typing ? Math.min((fields.timeout as number | undefined) ?? 30_000, 120_000) : undefined;
    await this.sender.send('m.typing', { room_id: roomId, user_id: userId, typing: fields.typing, ...(timeout !== undefined ? { timeout } : {}) }, { roomId });
    return {};
  }

  @Post('rooms/:roomId/receipt/:receiptType/:eventId')
  @HttpCode(200)
  async receipt(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Param('receiptType') receiptType: string, @Param('eventId') eventId: string, @Body() body: unknown) {
    assertRoomId(roomId);
    if (!RECEIPT_TYPES.includes(receiptType)) throw MatrixError.invalidParam(`Unknown receipt type ${receiptType}`);
    if (body !== undefined) asObject(body);
    await this.assertJoined(requester, roomId);
    await this.assertEventInRoom(roomId, eventId);
    const threadId = (body as { thread_id?: unknown } | undefined)?.thread_id;
    await this.mark(requester, roomId, receiptType, eventId, typeof threadId === 'string' ? threadId : undefined);
    return {};
  }

  /** The fully-read marker and, in the same call, the read receipts (each as `/receipt` would set it). */
  @Post('rooms/:roomId/read_markers')
  @HttpCode(200)
  async readMarkers(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Body() body: unknown) {
    assertRoomId(roomId);
    const fields = asObject(body);
    const marks: [string, string][] = [];
    for (const type of RECEIPT_TYPES) {
      const eventId = fields[type];
      if (eventId === undefined) continue;
      if (typeof eventId !== 'string') throw MatrixError.badJson(`${type} must be an event ID`);
      marks.push([type, eventId]);
    }
    await this.assertJoined(requester, roomId);
    for (const [, eventId] of marks) await this.assertEventInRoom(roomId, eventId);
    for (const [type, eventId] of marks) await this.mark(requester, roomId, type, eventId, undefined);
    return {};
  }

  /**
   * `m.read` goes to the other servers as an `m.receipt` EDU; the fully-read marker is kept as the user's room
   * account data; a private receipt is kept and told to the requesting service only (PrivateReceipts).
   */
  private async mark(requester: Requester, roomId: string, receiptType: string, eventId: string, threadId: string | undefined): Promise<void> {
    if (receiptType === 'm.fully_read') {
      await this.accountData.put(requester.userId, roomId, 'm.fully_read', { event_id: eventId });
      return;
    }
    if (receiptType === PRIVATE_RECEIPT_TYPE) {
      await this.privateReceipts.set(requester.service, requester.userId, roomId, eventId, threadId);
      return;
    }
    const data = { ts: Date.now(), ...(threadId !== undefined ? { thread_id: threadId } : {}) };
    await this.sender.send('m.receipt', { [roomId]: { 'm.read': { [requester.userId]: { event_ids: [eventId], data } } } }, { roomId });
  }

  private async assertEventInRoom(roomId: string, eventId: string): Promise<void> {
    const event = await this.view.event(eventId);
    if (!event || event.roomId !== roomId) throw MatrixError.notFound('Event not found.');
  }

  @Put('presence/:userId/status')
  async setPresence(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Body() body: unknown) {
    if (userId !== requester.userId) throw MatrixError.forbidden('Cannot set another user\'s presence');
    const fields = asObject(body);
    if (!['online', 'offline', 'unavailable'].includes(fields.presence as string)) throw MatrixError.badJson('presence must be online, offline or unavailable');
    if (fields.status_msg !== undefined && fields.status_msg !== null && typeof fields.status_msg !== 'string') throw MatrixError.badJson('status_msg must be a string');
    const update = {
      user_id: userId,
      presence: fields.presence as string,
      last_active_ago: 0,
      currently_active: fields.presence === 'online',
      ...(typeof fields.status_msg === 'string' ? { status_msg: fields.status_msg } : {}),
    };
    // Presence goes to every server sharing a room with the user.
    const destinations = new Set<string>();
    for (const roomId of await this.store.memberships.roomsOf(userId, 'join')) {
      for (const server of await this.store.rooms.getJoinedServers(roomId)) if (server !== this.identity.serverName) destinations.add(server);
    }
    await this.sender.send('m.presence', { push: [update] }, { destinations: [...destinations].sort() });
    return {};
  }

  @Get('presence/:userId/status')
  presence() {
    return { presence: 'offline' };
  }

  private async assertJoined(requester: Requester, roomId: string): Promise<void> {
    if ((await this.view.membership(roomId, requester.userId)) !== 'join') throw MatrixError.forbidden(`User ${requester.userId} not in room ${roomId}`);
  }
}
