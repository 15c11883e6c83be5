import { Body, Controller, Get, Param, Put, UseGuards } from '@nestjs/common';
import { MatrixError } from '@fedgate/service-kit';
import { Profiles } from '../profile/profiles';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';
import { CLIENT_PATHS } from './paths';

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class ProfileController {
  constructor(private readonly profiles: Profiles) {}

  @Get('profile/:userId')
  profile(@Param('userId') userId: string) {
    return this.profiles.get(userId);
  }

  @Get('profile/:userId/:field')
  async field(@Param('userId') userId: string, @Param('field') field: string) {
    if (field !== 'displayname' && field !== 'avatar_url') throw MatrixError.unrecognized();
    const profile = await this.profiles.get(userId);
    if (profile[field] === undefined) throw MatrixError.notFound(`The user has no ${field}`);
    return { [field]: profile[field] };
  }

  @Put('profile/:userId/:field')
  set(@CurrentRequester() requester: Requester, @Param('userId') userId: string, @Param('field') field: string, @Body() body: unknown) {
    if (field !== 'displayname' && field !== 'avatar_url') throw MatrixError.unrecognized();
    return this.profiles.set(requester, userId, field, body);
  }
}
