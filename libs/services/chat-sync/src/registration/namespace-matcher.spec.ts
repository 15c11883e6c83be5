import { NamespaceMatcher, compileNamespaceRegex } from './namespace-matcher';

describe('namespace regexes match whole identifiers', () => {
  it.each([
    ['@_irc_.*', '@_irc_alice:example.org', true],
    ['@_irc_.*', '@bob:example.org', false],
    ['@_irc_.*', '@x:example.org@_irc_y', false],
    ['@bot:example\\.org', '@bot:example.org', true],
    ['@bot:example\\.org', '@bot:example.org.evil', false],
    ['@bot:example\\.org', '@evilbot:example.org', false],
    ['\\#_irc_.*', '#_irc_room:example.org', true],
    ['.*', '!anything:example.org', true],
    ['@(?P<name>[a-z]+):x', '@abc:x', true],
    ['a|b', 'ab', false],
    ['a|b', 'b', true],
  ])('%s against %s → %s', (regex, identifier, expected) => {
    expect(compileNamespaceRegex(regex).test(identifier)).toBe(expected);
  });

  it('reports whether a match is exclusive', () => {
    const matcher = new NamespaceMatcher([
      { exclusive: false, regex: '@_chat_.*' },
      { exclusive: true, regex: '@_chat_admin_.*' },
    ]);
    expect(matcher.match('@_chat_a:x')).toEqual({ matched: true, exclusive: false });
    expect(matcher.match('@_chat_admin_a:x')).toEqual({ matched: true, exclusive: true });
    expect(matcher.match('@other:x')).toEqual({ matched: false, exclusive: false });
    expect(matcher.matchesExclusively('@_chat_admin_a:x')).toBe(true);
  });
});
