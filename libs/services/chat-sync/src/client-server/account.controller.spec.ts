import type { FedgateConfig } from '@fedgate/config';
import type { ServerIdentity, Store } from '@fedgate/platform';
import { ApplicationServiceRegistry, type AppServiceRegistration } from '../registration';
import { AccountController, VersionsController } from './account.controller';

const serverName = 'hs.test';
const registration: AppServiceRegistration = {
  id: 'chat',
  url: 'http://as.test',
  asToken: 'secret-as-token',
  hsToken: 'hs-token',
  senderLocalpart: 'chatbot',
  namespaces: { users: [{ exclusive: true, regex: '@_chat_.*:hs\\.test' }], aliases: [], rooms: [] },
  rateLimited: false,
  receiveEphemeral: false,
  protocols: [],
  source: 'chat.yaml',
};

describe('POST /register for an application service', () => {
  const registry = new ApplicationServiceRegistry([registration], serverName);
  const service = registry.findById('chat')!;
  let created: string[];
  let controller: AccountController;

  beforeEach(() => {
    created = [];
    const store = {
      chatLifecycle: { getDeactivated: async () => undefined },
      profiles: {
        create: async (profile: { userId: string }) => {
          created.push(profile.userId);
          return { created: true };
        },
      },
    } as unknown as Store;
    controller = new AccountController(store, { serverName } as ServerIdentity, registry, { rooms: { defaultVersion: '12' } } as FedgateConfig);
  });

  const register = (body: Record<string, unknown>) => controller.register({ service, userId: service.senderUserId }, { type: 'm.login.application_service', ...body });

  // Issue 11 defect 8: the answer carried the AS's own as_token as the new user's access token.
  // Rocket.Chat's bridge library registers without inhibit_login and treats any error but M_USER_IN_USE as fatal,
  // so the user is registered either way and no token of any kind is in the answer.
  it('never hands out the as_token: without inhibit_login the user is registered and the answer has no access token (defect 8)', async () => {
    const answer = await register({ username: '_chat_alice' });
    expect(answer).toEqual({ user_id: '@_chat_alice:hs.test' });
    expect(JSON.stringify(answer)).not.toContain(registration.asToken);
    const again = await register({ username: '_chat_carol', inhibit_login: false });
    expect(again).not.toHaveProperty('access_token');
    expect(created).toEqual(['@_chat_alice:hs.test', '@_chat_carol:hs.test']);
  });

  it('registers with inhibit_login and answers the user ID only', async () => {
    const answer = await register({ username: '_chat_bob', inhibit_login: true });
    expect(answer).toEqual({ user_id: '@_chat_bob:hs.test' });
    expect(JSON.stringify(answer)).not.toContain(registration.asToken);
    expect(created).toEqual(['@_chat_bob:hs.test']);
  });
});

describe('GET /versions', () => {
  // docs/spec-versions.md: v1.16 needs DELETE /profile/{userId}/{keyName} and m.profile_fields, v1.17 /login's
  // M_APPSERVICE_LOGIN_UNSUPPORTED, v1.18 invite blocking (M_INVITE_BLOCKED); none is claimed before it is there.
  it('advertises v1.13 to v1.15 and nothing later', () => {
    const { versions } = new VersionsController().versions();
    expect(versions.slice(-4)).toEqual(['v1.12', 'v1.13', 'v1.14', 'v1.15']);
    expect(versions).not.toContain('v1.18');
  });
});
