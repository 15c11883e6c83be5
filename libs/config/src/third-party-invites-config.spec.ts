// Issue 14: which identity servers third-party invites may use. None by default (every id_server refused).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from './index';

describe('thirdPartyInvites settings', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'fedgate-3pid-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const withFile = (yaml: string, env: Record<string, string> = {}) => {
    writeFileSync(path.join(dir, 'fedgate.yaml'), yaml);
    return loadConfig({ env: { FEDGATE_CONFIG: 'fedgate.yaml', ...env }, argv: [], cwd: dir });
  };

  it('trusts no identity server by default, with a 10 s bound on each call', () => {
    expect(loadConfig({ env: {}, argv: [], cwd: dir }).thirdPartyInvites).toEqual({ identityServers: [], requestTimeoutMs: 10_000 });
  });

  it('reads the listed identity servers from the file and the timeout from the environment', () => {
    const config = withFile('thirdPartyInvites:\n  identityServers:\n    - serverName: vector.im\n    - serverName: "id.internal:8090"\n      baseUrl: http://10.0.0.5:8090\n', { FEDGATE_THIRD_PARTY_INVITES__REQUEST_TIMEOUT_MS: '5000' });
    expect(config.thirdPartyInvites).toEqual({ identityServers: [{ serverName: 'vector.im' }, { serverName: 'id.internal:8090', baseUrl: 'http://10.0.0.5:8090' }], requestTimeoutMs: 5000 });
  });

  it.each([
    ['a server name that is no host', 'thirdPartyInvites:\n  identityServers:\n    - serverName: "https://vector.im"\n'],
    ['a base URL that is not http(s)', 'thirdPartyInvites:\n  identityServers:\n    - serverName: vector.im\n      baseUrl: file:///etc/passwd\n'],
    ['a misspelt key', 'thirdPartyInvites:\n  identityServers:\n    - servername: vector.im\n'],
  ])('refuses %s', (_what, yaml) => {
    expect(() => withFile(yaml)).toThrow(ConfigError);
  });
});
