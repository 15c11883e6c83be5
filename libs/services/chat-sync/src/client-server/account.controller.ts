// Versions, capabilities, whoami and AS registration of users.
import { Body, Controller, Get, HttpCode, Inject, Post, UseGuards } from '@nestjs/common';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { ROOM_VERSIONS, parseUserId } from '@fedgate/protocol';
import type { FedgateConfig } from '@fedgate/config';
import { FEDGATE_CONFIG, MatrixError } from '@fedgate/service-kit';
import { ApplicationServiceRegistry } from '../registration';
import { CHAT_SYNC_REGISTRY } from '../tokens';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from './requester';
import { CLIENT_PATHS } from './paths';

/**
 * The spec versions whose application service API, client-server endpoints fedgate serves and server-server
 * behaviour are implemented; docs/spec-versions.md checks each one and names what keeps v1.16 and later out.
 */
export const SUPPORTED_SPEC_VERSIONS = ['r0.6.1', 'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11', 'v1.12', 'v1.13', 'v1.14', 'v1.15'];

@Controller('_matrix/client')
export class VersionsController {
  @Get('versions')
  versions() {
    return { versions: SUPPORTED_SPEC_VERSIONS, unstable_features: {} };
  }
}

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class AccountController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry,
    @Inject(FEDGATE_CONFIG) private readonly config: FedgateConfig,
  ) {}

  @Get('account/whoami')
  whoami(@CurrentRequester() requester: Requester) {
    return { user_id: requester.userId, is_guest: false };
  }

  @Get('capabilities')
  capabilities() {
    const available: Record<string, string> = {};
    for (const [id, rules] of ROOM_VERSIONS) available[id] = rules.stable ? 'stable' : 'unstable';
    return {
      capabilities: {
        'm.room_versions': { default: this.config.rooms.defaultVersion, available },
        'm.change_password': { enabled: false },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.3pid_changes': { enabled: false },
      },
    };
  }

  /**
   * Only `m.login.application_service`: the AS creates users in its own namespace. There is no login here (no
   * user access tokens; the AS acts as its users with its as_token), so as the spec requires of a server
   * without the legacy authentication API, registration must ask for `inhibit_login: true`.
   */
  @Post('register')
  @HttpCode(200)
  async register(@CurrentRequester() requester: Requester, @Body() body: unknown) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw MatrixError.badJson('Body must be a JSON object');
    const { type, username } = body as { type?: unknown; username?: unknown };
    if (type !== 'm.login.application_service') {
      throw new MatrixError(400, 'M_UNKNOWN', 'Only m.login.application_service registration is supported');
    }
    if (typeof username !== 'string' || username.length === 0) throw MatrixError.missingParam('username is required');
    const localpart = username.startsWith('@') ? username.slice(1).split(':')[0] : username;
    if (!/^[a-z0-9._=\-/+]+$/.test(localpart)) throw new MatrixError(400, 'M_INVALID_USERNAME', `Invalid username ${JSON.stringify(username)}`);
    const userId = `@${localpart}:${this.identity.serverName}`;
    try {
      parseUserId(userId);
    } catch {
      throw new MatrixError(400, 'M_INVALID_USERNAME', `Invalid username ${JSON.stringify(username)}`);
    }
    if (!requester.service.isInterestedInUser(userId)) {
      throw new MatrixError(400, 'M_EXCLUSIVE', `${userId} is not in the application service's namespace`);
    }
    const owner = this.registry.exclusiveOwnerOfUser(userId);
    if (owner && owner !== requester.service) throw new MatrixError(400, 'M_EXCLUSIVE', `${userId} is in another application service's exclusive namespace`);
    // A deactivated user ID is never handed out again, registered before or not.
    if (await this.store.chatLifecycle.getDeactivated(userId)) throw new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken.');
    const { created } = await this.store.profiles.create({ userId, displayname: localpart, avatarUrl: null, appServiceId: requester.service.id, createdTs: Date.now() });
    if (!created) throw new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken.');
    // This server has no user logins: the AS acts for its users with its own as_token. So no access token is
    // ever answered, whatever inhibit_login says (bridge libraries that omit it must still be able to register).
    return { user_id: userId };
  }
}
