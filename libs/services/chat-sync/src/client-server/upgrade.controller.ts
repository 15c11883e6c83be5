// POST /rooms/{roomId}/upgrade (RoomUpgrades does the work).
import { Body, Controller, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { RoomUpgrades } from '../rooms/room-upgrade';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';
import { CLIENT_PATHS } from './paths';

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class UpgradeController {
  constructor(private readonly upgrades: RoomUpgrades) {}

  @Post('rooms/:roomId/upgrade')
  @HttpCode(200)
  upgrade(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Body() body: unknown) {
    return this.upgrades.upgrade(requester, roomId, body);
  }
}
