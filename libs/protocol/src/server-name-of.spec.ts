// Origin checks: the server an identifier names counts only when the identifier is one by the grammar.
import { isUserOf, serverNameOf } from './identifiers';

describe('serverNameOf / isUserOf (strict origin checks)', () => {
  it('gives the server of a user ID, historical localparts included', () => {
    expect(serverNameOf('@alice:origin.test')).toBe('origin.test');
    expect(serverNameOf('@Alice Smith:origin.test:8448')).toBe('origin.test:8448');
    expect(isUserOf('@alice:origin.test', 'origin.test')).toBe(true);
  });

  it.each([
    ['no sigil', 'x:origin.test'],
    ['a bare server name', 'origin.test'],
    ['a room ID', '!room:origin.test'],
    ['an alias', '#alias:origin.test'],
    ['a bad server after the colon', '@x:evil.test:origin.test'],
    ['no colon', '@origin.test'],
    ['NUL in the localpart', '@a\u0000:origin.test'],
  ])('is no user of the origin: %s (%j)', (_why, value) => {
    expect(serverNameOf(value)).toBeUndefined();
    expect(isUserOf(value, 'origin.test')).toBe(false);
  });

  it('is no user of anyone for a non-string', () => {
    expect(isUserOf(undefined, '')).toBe(false);
    expect(isUserOf({ toString: () => '@a:origin.test' }, 'origin.test')).toBe(false);
  });

  it('requires the sigil of the kind asked for', () => {
    expect(serverNameOf('!room:origin.test', 'room_id')).toBe('origin.test');
    expect(serverNameOf('@room:origin.test', 'room_id')).toBeUndefined();
    expect(serverNameOf('$ev:origin.test', 'event_id')).toBe('origin.test');
    expect(serverNameOf('!ev:origin.test', 'event_id')).toBeUndefined();
    expect(serverNameOf('#a:origin.test', 'room_alias')).toBe('origin.test');
  });
});
