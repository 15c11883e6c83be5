// Client-server `GET/POST /publicRooms` for application-service users: this server's directory (the same pages
// federation `publicRooms` serves: @fedgate/store's publicRoomsPage), or with `server=` another server's, asked over federation and relayed.
import { Body, Controller, Get, HttpCode, Inject, Post, Query, UseGuards } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { isValidServerName } from '@fedgate/protocol';
import { localPublicRoomsAnswer, localPublicRoomsQuery, MatrixError, parsePublicRoomsBody, parsePublicRoomsQuery, type PublicRoomsRequest } from '@fedgate/service-kit';
import { publicRoomsPage } from '@fedgate/store';
import { RemotePublicRooms } from '../directory/remote-public-rooms';
import { AppServiceAuthGuard } from './requester';
import { CLIENT_PATHS } from './paths';

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class PublicRoomsController {
  constructor(
    @Inject(STORE) private readonly store: Store,
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
    if (server === undefined || server === this.identity.serverName) {
      return localPublicRoomsAnswer(await publicRoomsPage(this.store, this.identity.serverName, localPublicRoomsQuery(request)));
    }
    return this.remote.page(server, method, request);
  }
}
