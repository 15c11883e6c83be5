// A remote server may invite a local user nobody registered yet: a virtual user the bridge creates
// lazily. As the application service API says a homeserver does, we ask the AS whose namespace holds
// the user (GET /_matrix/app/v1/users/{userId}) before its invite is pushed, and a yes creates the user
// (the AS may have registered it itself while answering; then it is simply there).
import { isUserOf } from '@fedgate/protocol';
import type { Store } from '@fedgate/platform';
import type { Logger } from 'pino';
import type { AppServiceClient } from '../push';
import type { ApplicationServiceRegistry } from '../registration';

export type InviteeOutcome =
  /** Registered already, or not a user of ours: nothing asked. */
  | 'known'
  /** An AS said it exists: registered now, owned by that AS. */
  | 'created'
  /** No AS claims it or every one said no (or could not be asked): left unregistered. */
  | 'unknown';

export class InviteeProvisioning {
  constructor(
    private readonly store: Store,
    private readonly registry: ApplicationServiceRegistry,
    private readonly client: Pick<AppServiceClient, 'queryUser'>,
    private readonly serverName: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async ensureRegistered(userId: string): Promise<InviteeOutcome> {
    if (!isUserOf(userId, this.serverName)) return 'known';
    if (await this.store.profiles.get(userId)) return 'known';
    // A deactivated user ID is never handed out again.
    if (await this.store.chatLifecycle.getDeactivated(userId)) return 'unknown';
    // The exclusive owner is the only one that may create it; without one, every interested AS in order.
    const owner = this.registry.exclusiveOwnerOfUser(userId);
    const candidates = owner ? [owner] : this.registry.servicesForUser(userId);
    for (const service of candidates) {
      if (service.registration.url === null) continue;
      let exists: boolean;
      try {
        exists = await this.client.queryUser(service.registration, userId);
      } catch (err) {
        this.logger.warn({ appService: service.id, userId, err: (err as Error).message }, 'user query to the application service failed; the invitee stays unregistered');
        continue;
      }
      if (!exists) continue;
      const localpart = userId.slice(1, userId.indexOf(':'));
      await this.store.profiles.create({ userId, displayname: localpart, avatarUrl: null, appServiceId: service.id, createdTs: this.now() });
      this.logger.info({ appService: service.id, userId }, 'invited user created on the application service\'s word');
      return 'created';
    }
    if (candidates.length) this.logger.info({ userId, asked: candidates.map((s) => s.id) }, 'invited user unknown to its application services');
    return 'unknown';
  }
}
