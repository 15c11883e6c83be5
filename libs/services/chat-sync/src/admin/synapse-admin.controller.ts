// The Synapse admin calls a bridge uses to deactivate a user and delete a room, answered in Synapse's
// shapes so an unmodified bridge works. Authenticated by as_token; an application service may act on
// its own namespace only (see UserDeactivation and RoomDeletion for what "its own" means).
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { parseUserId } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import type { RoomDeletionRecord } from '@fedgate/store';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { ApplicationServiceRegistry } from '../registration';
import { CHAT_SYNC_REGISTRY } from '../tokens';
import { auditPath, parseErase } from '../lifecycle/account-deactivation.controller';
import { parseRoomDeletionBody, RoomDeletion } from '../lifecycle/room-deletion';
import { UserDeactivation } from '../lifecycle/user-deactivation';
import { assertRoomId } from '../rooms/room-actions';

/** A deletion as the v2 status calls report it: fedgate deletes synchronously, so it is complete once known. */
const deleteStatus = (record: RoomDeletionRecord) => ({ status: 'complete', shutdown_room: record.result });

@Controller('_synapse/admin')
@UseGuards(AppServiceAuthGuard)
export class SynapseAdminController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry,
    private readonly deactivation: UserDeactivation,
    private readonly deletion: RoomDeletion,
  ) {}

  @Post('v1/deactivate/:userId')
  @HttpCode(200)
  async deactivate(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Body() body: unknown, @Req() request: FastifyRequest) {
    const erase = parseErase(body);
    await this.assertManagedUser(requester, userId);
    await this.deactivation.deactivate(requester.service, userId, { erase, method: 'POST', path: auditPath(request) });
    return { id_server_unbind_result: 'success' };
  }

  @Delete('v1/rooms/:roomId')
  deleteRoomV1(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Body() body: unknown, @Req() request: FastifyRequest) {
    return this.deleteRoomNow(requester, roomId, body, request);
  }

  /** The older spelling of the same call. */
  @Post('v1/rooms/:roomId/delete')
  @HttpCode(200)
  deleteRoomV1Post(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Body() body: unknown, @Req() request: FastifyRequest) {
    return this.deleteRoomNow(requester, roomId, body, request);
  }

  @Delete('v2/rooms/:roomId')
  async deleteRoomV2(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Body() body: unknown, @Req() request: FastifyRequest) {
    const record = await this.deletion.delete(requester.service, roomId, parseRoomDeletionBody(body), { method: 'DELETE', path: auditPath(request) });
    return { delete_id: record.deleteId };
  }

  @Get('v2/rooms/delete_status/:deleteId')
  async deleteStatusById(@CurrentRequester() requester: Requester, @Param('deleteId') deleteId: string) {
    const record = await this.store.chatLifecycle.getRoomDeletionById(deleteId);
    if (!record || record.appServiceId !== requester.service.id) throw MatrixError.notFound(`No deletion ${deleteId}`);
    return deleteStatus(record);
  }

  @Get('v2/rooms/:roomId/delete_status')
  async deleteStatusByRoom(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string) {
    assertRoomId(roomId);
    const record = await this.store.chatLifecycle.getRoomDeletion(roomId);
    if (!record || record.appServiceId !== requester.service.id) throw MatrixError.notFound(`No deletion of ${roomId}`);
    return { results: [{ delete_id: record.deleteId, ...deleteStatus(record) }] };
  }

  private async deleteRoomNow(requester: Requester, roomId: string, body: unknown, request: FastifyRequest) {
    const record = await this.deletion.delete(requester.service, roomId, parseRoomDeletionBody(body), { method: request.method, path: auditPath(request) });
    return record.result;
  }

  /** A registered (or already deactivated) local user in the requesting service's namespace. */
  private async assertManagedUser(requester: Requester, userId: string): Promise<void> {
    let server: string;
    try {
      server = parseUserId(userId).serverName;
    } catch {
      throw MatrixError.invalidParam(`${JSON.stringify(userId)} is not a valid user ID`);
    }
    if (server !== this.identity.serverName) throw MatrixError.invalidParam('Can only deactivate local users');
    const refusal = this.registry.actingRefusal(requester.service, userId);
    if (refusal === 'exclusive') throw new MatrixError(403, 'M_EXCLUSIVE', `${userId} is in another application service's exclusive namespace`);
    if (refusal) throw MatrixError.forbidden(`${userId} is not in the application service's namespace`);
    const profile = await this.store.profiles.get(userId);
    if (profile?.appServiceId && profile.appServiceId !== requester.service.id) throw new MatrixError(403, 'M_EXCLUSIVE', `${userId} was registered by another application service`);
    if (userId === requester.service.senderUserId) throw MatrixError.forbidden(`${userId} is the application service's sender and cannot be deactivated`);
    if (!(await this.store.profiles.get(userId)) && !(await this.store.chatLifecycle.getDeactivated(userId))) throw MatrixError.notFound(`User ${userId} not found`);
  }
}
