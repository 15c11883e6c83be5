import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRegistrationFile, parseRegistration, RegistrationError } from './load-registration';

const minimal = `
id: irc
url: http://127.0.0.1:1234
as_token: as-irc
hs_token: hs-irc
sender_localpart: _irc_bot
namespaces:
  users:
    - exclusive: true
      regex: "@_irc_.*"
  aliases:
    - exclusive: false
      regex: "\\\\#_irc_.*"
`;

describe('parseRegistration', () => {
  it('reads the spec example shape and fills defaults', () => {
    const registration = parseRegistration(minimal, 'irc.yaml');
    expect(registration).toEqual({
      id: 'irc',
      url: 'http://127.0.0.1:1234',
      asToken: 'as-irc',
      hsToken: 'hs-irc',
      senderLocalpart: '_irc_bot',
      namespaces: {
        users: [{ exclusive: true, regex: '@_irc_.*' }],
        aliases: [{ exclusive: false, regex: '\\#_irc_.*' }],
        rooms: [],
      },
      rateLimited: true,
      receiveEphemeral: false,
      protocols: [],
      legacyQueryAuth: false,
      msc3202: false,
      source: 'irc.yaml',
    });
  });

  it('issue 13: org.matrix.msc3202 turns on the encryption fields of transactions, per registration', () => {
    expect(parseRegistration(`${minimal}\norg.matrix.msc3202: true\n`, 'r.yaml').msc3202).toBe(true);
    expect(() => parseRegistration(`${minimal}\norg.matrix.msc3202: "yes"\n`, 'r.yaml')).toThrow(/msc3202/);
  });

  it('legacy token placement (issue 15): use_appservice_legacy_authorization is read per registration, also beside a Rocket.Chat block', async () => {
    const fixture = await import('node:fs/promises').then((fs) => fs.readFile(join(__dirname, 'fixtures', 'rocketchat-registration.yaml'), 'utf8'));
    expect(parseRegistration(`${fixture}\nuse_appservice_legacy_authorization: true\n`, 'rc.yaml').legacyQueryAuth).toBe(true);
    expect(parseRegistration(fixture, 'rc.yaml').legacyQueryAuth).toBe(false);
    expect(() => parseRegistration(`${minimal}\nuse_appservice_legacy_authorization: "yes"\n`, 'r.yaml')).toThrow(/use_appservice_legacy_authorization/);
  });

  it("accepts the registration Rocket.Chat's Matrix Bridge writes, as is", async () => {
    const registration = await loadRegistrationFile(join(__dirname, 'fixtures', 'rocketchat-registration.yaml'));
    expect(registration.id).toBe('rocketchat_0b9d3c2e-5f41-4d7a-9e61-2a8c7f0d1b34');
    expect(registration.senderLocalpart).toBe('rocket.cat');
    expect(registration.url).toBe('http://rocketchat.test:3300');
    expect(registration.namespaces.users).toEqual([{ exclusive: false, regex: '.*' }]);
    expect(registration.receiveEphemeral).toBe(false);
  });

  it.each([
    ['receive_ephemeral: true', true],
    ['de.sorunome.msc2409.push_ephemeral: true', true],
    ['push_ephemeral: true', true],
    ['receive_ephemeral: false\nde.sorunome.msc2409.push_ephemeral: true', false],
    ['rate_limited: false', false],
  ])('ephemeral and rate-limit flags: %s', (extra, expected) => {
    const registration = parseRegistration(`${minimal}\n${extra}\n`, 'r.yaml');
    if (extra.startsWith('rate_limited')) expect(registration.rateLimited).toBe(expected);
    else expect(registration.receiveEphemeral).toBe(expected);
  });

  it('accepts url: null and protocols', () => {
    const registration = parseRegistration(minimal.replace(/url: .*/, 'url: null') + 'protocols: [irc]\n', 'r.yaml');
    expect(registration.url).toBeNull();
    expect(registration.protocols).toEqual(['irc']);
  });

  it.each([
    ['a missing as_token', (y: string) => y.replace(/as_token: .*\n/, ''), 'r.yaml: as_token: must have required property'],
    ['a missing url', (y: string) => y.replace(/url: .*\n/, ''), 'r.yaml: url: must have required property'],
    ['a numeric hs_token', (y: string) => y.replace(/hs_token: .*/, 'hs_token: 12'), 'r.yaml: hs_token: must be string'],
    ['a rule without exclusive', (y: string) => y.replace('- exclusive: true\n      regex', '- regex'), 'r.yaml: namespaces.users[0].exclusive'],
    ['a regex that does not compile', (y: string) => y.replace('"@_irc_.*"', '"@_irc_(["'), 'r.yaml: namespaces.users[0].regex: Invalid regular expression'],
    ['a non-http url', (y: string) => y.replace(/url: .*/, 'url: ftp://x'), 'r.yaml: url: must be an http(s) URL'],
    ['broken YAML', () => 'id: [unclosed', 'r.yaml: not valid YAML'],
    ['a YAML list', () => '- a\n- b\n', 'r.yaml: must be object'],
  ])('rejects %s, naming file and field', (_name, edit, message) => {
    let error: unknown;
    try {
      parseRegistration(edit(minimal), 'r.yaml');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RegistrationError);
    expect((error as Error).message).toContain(message);
  });

  it('names the path when the file cannot be read, and reads files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-reg-'));
    try {
      await expect(loadRegistrationFile(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml: cannot read/);
      await writeFile(join(dir, 'irc.yaml'), minimal);
      await expect(loadRegistrationFile(join(dir, 'irc.yaml'))).resolves.toMatchObject({ id: 'irc' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
