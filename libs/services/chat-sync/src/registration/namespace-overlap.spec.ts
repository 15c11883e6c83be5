// Issue 18 defect 6: an exclusive claim wins over a non-exclusive one, and registrations whose exclusive
// claims may meet are refused at start with the reason.
import { ApplicationServiceRegistry } from './application-service-registry';
import { RegistrationError } from './load-registration';
import { literalPrefix, mayOverlap } from './namespace-overlap';
import { fakeRegistration } from './fake-registration';

const server = 'hs.test';

const registration = (id: string, users: { exclusive: boolean; regex: string }[], aliases: { exclusive: boolean; regex: string }[] = []) =>
  fakeRegistration(id, null, { namespaces: { users, aliases, rooms: [] } });

describe('literalPrefix and mayOverlap', () => {
  it.each([
    ['@_irc_.*:hs\\.test', '@_irc_', false],
    ['@bot:hs\\.test', '@bot:hs.test', true],
    ['@a?b.*', '@', false],
    ['@(x|y).*', '', false],
    ['@\\d+', '@', false],
  ])('%s starts with %j', (regex, prefix, complete) => {
    expect(literalPrefix(regex)).toEqual({ prefix, complete });
  });

  it.each([
    ['@_irc_.*', '@_slack_.*', false],
    ['@.*', '@_irc_.*', true],
    ['@_irc_.*', '@_irc_bot', true],
    ['@bot:hs\\.test', '@_irc_.*', false],
    ['@bot:hs\\.test', '@bot:hs\\.test', true],
    ['@(a|b)_.*', '@c_.*', true],
  ])('%s and %s may overlap: %s', (a, b, expected) => {
    expect(mayOverlap(a, b)).toBe(expected);
    expect(mayOverlap(b, a)).toBe(expected);
  });
});

describe('ApplicationServiceRegistry with overlapping namespaces', () => {
  const bridge = registration('bridge', [{ exclusive: true, regex: '@bridge_.*:hs\\.test' }]);
  const bot = registration('bot', [{ exclusive: false, regex: '@.*:hs\\.test' }]);

  it("an exclusive claim wins over another service's non-exclusive namespace", () => {
    const registry = new ApplicationServiceRegistry([bridge, bot], server);
    const botService = registry.findById('bot')!;
    expect(botService.isInterestedInUser('@bridge_alice:hs.test')).toBe(true);
    expect(registry.actingRefusal(botService, '@bridge_alice:hs.test')).toBe('exclusive');
    expect(registry.actingRefusal(registry.findById('bridge')!, '@bridge_alice:hs.test')).toBeUndefined();
    expect(registry.actingRefusal(botService, '@someone:hs.test')).toBeUndefined();
    expect(registry.actingRefusal(botService, '@someone:elsewhere.test')).toBe('outside');
  });

  it('refuses two exclusive user namespaces that may share a user, naming both files', () => {
    const greedy = registration('greedy', [{ exclusive: true, regex: '@.*:hs\\.test' }]);
    expect(() => new ApplicationServiceRegistry([bridge, greedy], server)).toThrow(RegistrationError);
    expect(() => new ApplicationServiceRegistry([bridge, greedy], server)).toThrow(/greedy\.yaml: namespaces\.users: .*may overlap.*bridge\.yaml/);
  });

  it('refuses overlapping exclusive alias namespaces too', () => {
    const a = registration('a', [], [{ exclusive: true, regex: '#chat_.*' }]);
    const b = registration('b', [], [{ exclusive: true, regex: '#chat_room_.*' }]);
    expect(() => new ApplicationServiceRegistry([a, b], server)).toThrow(/namespaces\.aliases/);
  });

  it("refuses an exclusive namespace that covers another service's sender", () => {
    const claimsBotSender = registration('claims', [{ exclusive: true, regex: '@bot.*:hs\\.test' }]);
    expect(() => new ApplicationServiceRegistry([claimsBotSender, bot], server)).toThrow(/covers @botbot:hs\.test, the sender of bot\.yaml/);
  });

  it('accepts disjoint exclusive namespaces', () => {
    const irc = registration('irc', [{ exclusive: true, regex: '@_irc_.*:hs\\.test' }]);
    const slack = registration('slack', [{ exclusive: true, regex: '@_slack_.*:hs\\.test' }]);
    expect(() => new ApplicationServiceRegistry([irc, slack, bot], server)).not.toThrow();
  });
});
