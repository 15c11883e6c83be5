// Queries other servers make about this one: profiles, aliases, the public room directory (devices and
// keys: e2ee/user-keys.controller.ts).
import { Body, Controller, Get, HttpCode, Inject, Post, Query, UseGuards, UseInterceptors } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { isUserOf } from '@fedgate/protocol';
import { MatrixError, parsePublicRoomsBody, parsePublicRoomsQuery } from '@fedgate/service-kit';
import { AuditReasonInterceptor } from '../audit/audit-reason.interceptor';
import { XMatrixGuard } from '../auth/x-matrix.guard';
import { PublicRooms } from './public-rooms';

/** The profiles and aliases repositories chat-sync adds to the Store; read when present (older stores lack them). */
interface OptionalRepositories {
  profiles?: { get(userId: string): Promise<{ displayname: string | null; avatarUrl: string | null } | undefined> };
  aliases?: { get(alias: string): Promise<{ roomId: string; servers: string[] } | undefined> };
}


@Controller('_matrix/federation/v1')
@UseGuards(XMatrixGuard)
@UseInterceptors(AuditReasonInterceptor)
export class QueryController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    private readonly publicRooms: PublicRooms,
  ) {}

  @Get('query/profile')
  async profile(@Query('user_id') userId: string | undefined, @Query('field') field: string | undefined) {
    if (!userId) throw MatrixError.missingParam('user_id is required');
    if (field !== undefined && field !== 'displayname' && field !== 'avatar_url') throw MatrixError.invalidParam('field must be displayname or avatar_url');
    if (!isUserOf(userId, this.identity.serverName)) throw MatrixError.invalidParam(`User ${userId} is not on this server`);
    const profiles = (this.store as unknown as OptionalRepositories).profiles;
    const profile = profiles ? await profiles.get(userId) : undefined;
    if (!profile) throw MatrixError.notFound('Profile not found');
    const answer: Record<string, string> = {};
    const avatar = profile.avatarUrl;
    if (profile.displayname && field !== 'avatar_url') answer.displayname = profile.displayname;
    if (avatar && field !== 'displayname') answer.avatar_url = avatar;
    return answer;
  }

  @Get('query/directory')
  async directory(@Query('room_alias') alias: string | undefined) {
    if (!alias) throw MatrixError.missingParam('room_alias is required');
    const aliases = (this.store as unknown as OptionalRepositories).aliases;
    const found = aliases ? await aliases.get(alias) : undefined;
    if (!found) throw MatrixError.notFound(`Room alias ${alias} not found`);
    const servers = found.servers.length ? found.servers : [this.identity.serverName];
    return { room_id: found.roomId, servers };
  }

  @Get('publicRooms')
  async publicRoomsGet(@Query() query: Record<string, unknown>) {
    return this.publicRooms.answer(parsePublicRoomsQuery(query));
  }

  @Post('publicRooms')
  @HttpCode(200)
  async publicRoomsPost(@Body() body: unknown) {
    return this.publicRooms.answer(parsePublicRoomsBody(body));
  }
}
