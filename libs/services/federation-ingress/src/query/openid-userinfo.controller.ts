// `GET /_matrix/federation/v1/openid/userinfo`: who an OpenID token (issued by chat-sync) speaks for. Not signed
// with X-Matrix — integration managers call it — so the token is the only credential: unknown, expired, or of a
// user deactivated since, it is refused alike (401 M_UNKNOWN_TOKEN).
import { createHash } from 'node:crypto';
import { Controller, Get, Inject, Query } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';

@Controller('_matrix/federation/v1')
export class OpenIdUserInfoController {
  constructor(@Inject(STORE) private readonly store: Store) {}

  @Get('openid/userinfo')
  async userInfo(@Query('access_token') token: unknown) {
    if (token === undefined) throw MatrixError.missingParam('access_token is required');
    const unknown = () => new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Access token unknown or expired');
    if (typeof token !== 'string' || token.length === 0 || token.length > 256) throw unknown();
    const record = await this.store.openIdTokens.findValid(createHash('sha256').update(token, 'utf8').digest('base64url'), Date.now());
    if (!record || (await this.store.chatLifecycle.getDeactivated(record.userId))) throw unknown();
    return { sub: record.userId };
  }
}
