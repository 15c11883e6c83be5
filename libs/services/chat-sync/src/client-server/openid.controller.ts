// `POST /user/{userId}/openid/request_token`: a token an integration manager or widget hands to
// `/_matrix/federation/v1/openid/userinfo` on this server to learn who the user is. Only its hash is stored.
import { createHash, randomBytes } from 'node:crypto';
import { Controller, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { MatrixError } from '@fedgate/service-kit';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';
import { CLIENT_PATHS } from './paths';

export const OPENID_TOKEN_LIFETIME_MS = 3_600_000;

export const openIdTokenHash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('base64url');

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class OpenIdController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  @Post('user/:userId/openid/request_token')
  @HttpCode(200)
  async requestToken(@CurrentRequester() requester: Requester, @Param('userId') userId: string) {
    if (userId !== requester.userId) throw MatrixError.forbidden('Cannot request an OpenID token for another user');
    const now = Date.now();
    const token = randomBytes(32).toString('base64url');
    await this.store.openIdTokens.put({ tokenHash: openIdTokenHash(token), userId, expiresTs: now + OPENID_TOKEN_LIFETIME_MS });
    await this.store.openIdTokens.purgeExpired(now);
    return { access_token: token, token_type: 'Bearer', matrix_server_name: this.identity.serverName, expires_in: OPENID_TOKEN_LIFETIME_MS / 1000 };
  }
}
