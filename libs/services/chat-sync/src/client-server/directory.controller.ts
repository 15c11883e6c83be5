import { Body, Controller, Delete, Get, Inject, Param, Put, UseGuards } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import { AliasDirectory } from '../directory/alias-directory';
import { RoomDirectory } from '../directory/room-directory';
import { RoomVisibility } from '../lifecycle/room-visibility';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';
import { CLIENT_PATHS } from './paths';

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class DirectoryController {
  constructor(
    private readonly aliases: AliasDirectory,
    private readonly rooms: RoomDirectory,
    private readonly roomVisibility: RoomVisibility,
    @Inject(STORE) private readonly store: Store,
  ) {}

  @Get('directory/room/:alias')
  async get(@Param('alias') alias: string) {
    const { roomId, servers } = await this.aliases.resolve(alias);
    return { room_id: roomId, servers };
  }

  @Put('directory/room/:alias')
  async put(@CurrentRequester() requester: Requester, @Param('alias') alias: string, @Body() body: unknown) {
    const roomId = (body as { room_id?: unknown } | undefined)?.room_id;
    if (typeof roomId !== 'string') throw MatrixError.badJson('room_id is required');
    await this.aliases.create(requester, alias, roomId);
    return {};
  }

  /** The room's local aliases, for a member (or anyone when the room is world-readable). */
  @Get('rooms/:roomId/aliases')
  async roomAliases(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string) {
    await this.roomVisibility.readableState(requester, roomId, { whenLeft: false });
    return { aliases: (await this.store.aliases.forRoom(roomId)).map((a) => a.alias) };
  }

  @Get('directory/list/room/:roomId')
  visibility(@Param('roomId') roomId: string) {
    return this.rooms.visibility(roomId);
  }

  @Put('directory/list/room/:roomId')
  setVisibility(@CurrentRequester() requester: Requester, @Param('roomId') roomId: string, @Body() body: unknown) {
    return this.rooms.setVisibility(requester, roomId, body);
  }

  @Delete('directory/room/:alias')
  async remove(@CurrentRequester() requester: Requester, @Param('alias') alias: string) {
    await this.aliases.remove(requester, alias);
    return {};
  }
}
