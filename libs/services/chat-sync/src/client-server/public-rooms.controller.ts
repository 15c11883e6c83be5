// Client-server `GET/POST /publicRooms` for application-service users: this server's directory (the same pages
// federation `publicRooms` serves), or with `server=` another server's, asked over federation and relayed.
import { Body, Controller, Get, HttpCode, Inject, Post, Query, UseGuards } from '@nestjs/common';
import { SERVER_IDENTITY, type ServerIdentity } from '@fedgate/platform';
import { isValidServerName } from '@fedgate/protocol';
import { parsePublicRoomsBody, parsePublicRoomsQuery, PublicRooms, type PublicRoomsRequest } from '@fedgate/federation-ingress';
import { MatrixError } from '@fedgate/service-kit';
import { RemotePublicRooms } from '../directory/remote-public-rooms';
import { AppServiceAuthGuard } from './requester';
import { CLIENT_PATHS } from './paths';

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class PublicRoomsController {
  constructor(
    private readonly local: PublicRooms,
    private readonly remote: RemotePublicRooms,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  @Get('publicRooms')
  async list(@Query() query: Record<string, unknown>) {
    return this.answer(query.server, 'GET', parsePublicRoomsQuery(query));
  }

  @Post('publicRooms')
  @HttpCode(200)
  async search(@Query('server') server: unknown, @Body() body: unknown) {
    return this.answer(server, 'POST', parsePublicRoomsBody(body));
  }

  private async answer(server: unknown, method: 'GET' | 'POST', request: PublicRoomsRequest) {
    if (server !== undefined && (typeof server !== 'string' || !isValidServerName(server))) throw MatrixError.invalidParam('server must be a server name');
    if (request.limit !== undefined && (!Number.isInteger(request.limit) || request.limit < 0)) throw MatrixError.invalidParam('limit must be a non-negative integer');
    if (server === undefined || server === this.identity.serverName) return this.local.answer(request);
    return this.remote.page(server, method, request);
  }
}
