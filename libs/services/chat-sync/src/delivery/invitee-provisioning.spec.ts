import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { openSqliteStore, type Store } from '@fedgate/store';
import { ApplicationServiceRegistry, type AppServiceRegistration } from '../registration';
import { AppServiceRequestError } from '../push';
import { InviteeProvisioning } from './invitee-provisioning';
import { fakeRegistration } from '../registration/fake-registration';

const server = 'hs.test';

const registration = (id: string, regex: string, exclusive: boolean, url: string | null = `http://${id}.test`) =>
  fakeRegistration(id, url, { namespaces: { users: [{ exclusive, regex }], aliases: [], rooms: [] } });

describe('InviteeProvisioning: asking the AS about an invitee nobody registered', () => {
  let dir: string;
  let store: Store;
  let asked: Array<[string, string]>;
  let answers: Record<string, boolean | Error>;
  const registry = new ApplicationServiceRegistry(
    [registration('chat', '@chat_.*:hs\\.test', true), registration('watcher', '@.*:hs\\.test', false), registration('silent', '@silent_.*:hs\\.test', true, null)],
    server,
  );
  const client = {
    queryUser: async (r: AppServiceRegistration, userId: string) => {
      asked.push([r.id, userId]);
      const answer = answers[r.id] ?? false;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  let provisioning: InviteeProvisioning;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fedgate-invitee-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
    asked = [];
    answers = {};
    provisioning = new InviteeProvisioning(store, registry, client, server, pino({ level: 'silent' }), () => 1234);
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('asks the exclusive owner only, and creates the user it vouches for', async () => {
    answers = { chat: true, watcher: true };
    expect(await provisioning.ensureRegistered('@chat_new:hs.test')).toBe('created');
    expect(asked).toEqual([['chat', '@chat_new:hs.test']]);
    expect(await store.profiles.get('@chat_new:hs.test')).toEqual({ userId: '@chat_new:hs.test', displayname: 'chat_new', avatarUrl: null, appServiceId: 'chat', createdTs: 1234 });
    // Known from now on: not asked again.
    expect(await provisioning.ensureRegistered('@chat_new:hs.test')).toBe('known');
    expect(asked).toHaveLength(1);
  });

  it('leaves the user unregistered when the owner says no or cannot be asked', async () => {
    answers = { chat: false };
    expect(await provisioning.ensureRegistered('@chat_nobody:hs.test')).toBe('unknown');
    answers = { chat: new AppServiceRequestError('chat', 500, 'M_UNKNOWN', 'boom') };
    expect(await provisioning.ensureRegistered('@chat_nobody:hs.test')).toBe('unknown');
    expect(await store.profiles.get('@chat_nobody:hs.test')).toBeUndefined();
  });

  it('without an exclusive owner asks the interested services in order', async () => {
    answers = { watcher: true };
    expect(await provisioning.ensureRegistered('@plain:hs.test')).toBe('created');
    expect(asked).toEqual([['watcher', '@plain:hs.test']]);
    expect((await store.profiles.get('@plain:hs.test'))?.appServiceId).toBe('watcher');
  });

  it('asks nobody about registered, remote, deactivated users or an owner without a url', async () => {
    await store.profiles.create({ userId: '@chat_old:hs.test', displayname: 'old', avatarUrl: null, appServiceId: 'chat', createdTs: 1 });
    await store.chatLifecycle.deactivate({ userId: '@chat_gone:hs.test', deactivatedTs: 1, erased: false, appServiceId: 'chat' });
    answers = { chat: true, watcher: true, silent: true };
    expect(await provisioning.ensureRegistered('@chat_old:hs.test')).toBe('known');
    expect(await provisioning.ensureRegistered('@chat_x:elsewhere.test')).toBe('known');
    expect(await provisioning.ensureRegistered('@chat_gone:hs.test')).toBe('unknown');
    expect(await provisioning.ensureRegistered('@silent_one:hs.test')).toBe('unknown');
    expect(asked).toEqual([]);
  });

  it('strict origin check: an invitee that only ends in ":hs.test" (`@chat_x:evil.test:hs.test`, `chat_x:hs.test`) is no user of ours: nobody asked, nothing created', async () => {
    answers = { chat: true, watcher: true };
    for (const lie of ['@chat_x:evil.test:hs.test', 'chat_x:hs.test']) expect(await provisioning.ensureRegistered(lie)).toBe('known');
    expect(asked).toEqual([]);
    expect(await store.profiles.get('@chat_x:evil.test:hs.test')).toBeFalsy();
  });
});
