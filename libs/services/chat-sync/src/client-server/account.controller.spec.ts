import type { ServerIdentity, Store } from '@fedgate/platform';
import { ApplicationServiceRegistry, type AppServiceRegistration } from '../registration';
import { AccountController } from './account.controller';

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
    controller = new AccountController(store, { serverName } as ServerIdentity, registry);
  });

  const register = (body: Record<string, unknown>) => controller.register({ service, userId: service.senderUserId }, { type: 'm.login.application_service', ...body });

  // Issue 11 defect 8: the answer carried the AS's own as_token as the new user's access token.
  it('never hands out the as_token: without inhibit_login it refuses with 400 M_APPSERVICE_LOGIN_UNSUPPORTED (defect 8)', async () => {
    const refused = register({ username: '_chat_alice' });
    await expect(refused).rejects.toMatchObject({ status: 400, errcode: 'M_APPSERVICE_LOGIN_UNSUPPORTED' });
    await expect(register({ username: '_chat_alice', inhibit_login: false })).rejects.toMatchObject({ errcode: 'M_APPSERVICE_LOGIN_UNSUPPORTED' });
    expect(created).toEqual([]);
  });

  it('registers with inhibit_login and answers the user ID only', async () => {
    const answer = await register({ username: '_chat_bob', inhibit_login: true });
    expect(answer).toEqual({ user_id: '@_chat_bob:hs.test' });
    expect(JSON.stringify(answer)).not.toContain(registration.asToken);
    expect(created).toEqual(['@_chat_bob:hs.test']);
  });
});
