import type { AppServiceRegistration } from './registration';
import { ApplicationServiceRegistry } from './application-service-registry';
import { RegistrationError } from './load-registration';

const server = 'hs.test';

function registration(overrides: Partial<AppServiceRegistration> & { id: string }): AppServiceRegistration {
  return {
    url: 'http://as.test',
    asToken: `as-${overrides.id}`,
    hsToken: `hs-${overrides.id}`,
    senderLocalpart: `${overrides.id}bot`,
    namespaces: { users: [], aliases: [], rooms: [] },
    rateLimited: false,
    receiveEphemeral: false,
    protocols: [],
    source: `${overrides.id}.yaml`,
    ...overrides,
  };
}

const chat = registration({
  id: 'chat',
  namespaces: {
    users: [{ exclusive: true, regex: '@_chat_.*:hs\\.test' }],
    aliases: [{ exclusive: false, regex: '#_chat_.*' }],
    rooms: [{ exclusive: false, regex: '!bridged.*' }],
  },
});
const logger = registration({ id: 'logger', namespaces: { users: [{ exclusive: false, regex: '@.*' }], aliases: [], rooms: [] } });
const registry = new ApplicationServiceRegistry([chat, logger], server);
const chatService = registry.findById('chat')!;

describe('ApplicationService.isInterestedIn', () => {
  const message = { type: 'm.room.message', room_id: '!r:remote.test', sender: '@alice:remote.test' };
  it.each([
    ['nothing of its own', message, [], [], false],
    ['its sender user sends', { ...message, sender: '@chatbot:hs.test' }, [], [], true],
    ['a namespaced user sends', { ...message, sender: '@_chat_bob:hs.test' }, [], [], true],
    ['a namespaced user is joined', message, ['@alice:remote.test', '@_chat_bob:hs.test'], [], true],
    ['its sender user is joined', message, ['@chatbot:hs.test'], [], true],
    ['a namespaced user is the membership target', { type: 'm.room.member', room_id: '!r:remote.test', sender: '@alice:remote.test', state_key: '@_chat_bob:hs.test' }, [], [], true],
    ['a namespaced user is the state_key of a non-member event', { type: 'm.room.name', room_id: '!r:remote.test', sender: '@alice:remote.test', state_key: '@_chat_bob:hs.test' }, [], [], false],
    ['the room ID is namespaced', { ...message, room_id: '!bridged1:remote.test' }, [], [], true],
    ['a room alias is namespaced', message, [], ['#other:remote.test', '#_chat_general:hs.test'], true],
    ['a remote user matches the user regex shape only', { ...message, sender: '@_chat_bob:remote.test' }, ['@_chat_eve:remote.test'], [], false],
  ])('%s → %s', (_name, event, members, aliases, expected) => {
    expect(chatService.isInterestedIn(event, { joinedMembers: members, aliases })).toBe(expected);
  });

  it('the registry lists every interested service', () => {
    const local = { type: 'm.room.message', room_id: '!r:hs.test', sender: '@carol:hs.test' };
    expect(registry.interestedIn(local, { joinedMembers: ['@carol:hs.test'] }).map((s) => s.id)).toEqual(['logger']);
    expect(registry.interestedIn(local, { joinedMembers: ['@_chat_x:hs.test'] }).map((s) => s.id)).toEqual(['chat', 'logger']);
  });
});

describe('ApplicationServiceRegistry', () => {
  it.each([
    ['as-chat', 'chat'],
    ['as-logger', 'logger'],
    ['as-chat ', undefined],
    ['', undefined],
    ['hs-chat', undefined],
  ])('finds by as_token %j → %s', (token, id) => {
    expect(registry.findByAsToken(token)?.id).toBe(id);
  });

  it('reports exclusive owners', () => {
    expect(registry.exclusiveOwnerOfUser('@_chat_a:hs.test')?.id).toBe('chat');
    expect(registry.exclusiveOwnerOfUser('@chatbot:hs.test')?.id).toBe('chat');
    expect(registry.exclusiveOwnerOfUser('@alice:hs.test')).toBeUndefined();
    expect(registry.exclusiveOwnerOfAlias('#_chat_a:hs.test')).toBeUndefined();
    expect(registry.servicesForUser('@_chat_a:hs.test').map((s) => s.id)).toEqual(['chat', 'logger']);
    expect(registry.servicesForAlias('#_chat_a:hs.test').map((s) => s.id)).toEqual(['chat']);
  });

  it.each([
    ['id', registration({ id: 'chat', asToken: 'other', hsToken: 'other-hs', source: 'copy.yaml' }), 'copy.yaml: id: is the same as in chat.yaml'],
    ['as_token', registration({ id: 'two', asToken: 'as-chat', source: 'two.yaml' }), 'two.yaml: as_token: is the same as in chat.yaml'],
    ['hs_token', registration({ id: 'two', hsToken: 'hs-chat', source: 'two.yaml' }), 'two.yaml: hs_token: is the same as in chat.yaml'],
    ['hs_token vs as_token', registration({ id: 'two', hsToken: 'as-chat', source: 'two.yaml' }), 'two.yaml: hs_token: equals the as_token of chat.yaml'],
  ])('rejects a duplicate %s', (_field, second, message) => {
    expect(() => new ApplicationServiceRegistry([chat, second], server)).toThrow(RegistrationError);
    expect(() => new ApplicationServiceRegistry([chat, second], server)).toThrow(message);
  });
});
