// `/user/{userId}/account_data/{type}`, `/user/{userId}/rooms/{roomId}/account_data/{type}` and room tags.
import { Body, Controller, Delete, Get, Param, Put, UseGuards } from '@nestjs/common';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { CLIENT_PATHS } from '../client-server/paths';
import { AccountData } from './account-data';

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class AccountDataController {
  constructor(private readonly accountData: AccountData) {}

  @Get('user/:userId/account_data/:type')
  global(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Param('type') type: string) {
    return this.accountData.get(requester, userId, null, type);
  }

  @Put('user/:userId/account_data/:type')
  async setGlobal(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Param('type') type: string, @Body() body: unknown) {
    await this.accountData.putByClient(requester, userId, null, type, body);
    return {};
  }

  @Get('user/:userId/rooms/:roomId/account_data/:type')
  room(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Param('roomId') roomId: string, @Param('type') type: string) {
    return this.accountData.get(requester, userId, roomId, type);
  }

  @Put('user/:userId/rooms/:roomId/account_data/:type')
  async setRoom(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Param('roomId') roomId: string, @Param('type') type: string, @Body() body: unknown) {
    await this.accountData.putByClient(requester, userId, roomId, type, body);
    return {};
  }

  @Get('user/:userId/rooms/:roomId/tags')
  tags(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Param('roomId') roomId: string) {
    return this.accountData.tags(requester, userId, roomId);
  }

  @Put('user/:userId/rooms/:roomId/tags/:tag')
  async setTag(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Param('roomId') roomId: string, @Param('tag') tag: string, @Body() body: unknown) {
    await this.accountData.setTag(requester, userId, roomId, tag, body);
    return {};
  }

  @Delete('user/:userId/rooms/:roomId/tags/:tag')
  async deleteTag(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Param('roomId') roomId: string, @Param('tag') tag: string) {
    await this.accountData.deleteTag(requester, userId, roomId, tag);
    return {};
  }
}
