import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PolicyError } from '@fedgate/protocol';
import { ConfigError, loadConfig, readPolicyFile } from './index';

describe('policy server settings and the policy file', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'fedgate-policy-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('is off by default, with its own key file beside the signing key', () => {
    const config = loadConfig({ env: {}, argv: [], cwd: dir });
    expect(config.policyServer).toEqual({ enabled: false, keyPath: path.join(dir, 'data', 'policy_server.key'), reloadIntervalMs: 2000 });
  });

  it('needs a policy file when enabled, and resolves its path', () => {
    expect(() => loadConfig({ env: { FEDGATE_POLICY_SERVER__ENABLED: 'true' }, argv: [], cwd: dir })).toThrow(ConfigError);
    const config = loadConfig({ env: { FEDGATE_POLICY_SERVER__ENABLED: 'true', FEDGATE_POLICY_SERVER__POLICY_FILE: 'policy.yaml' }, argv: [], cwd: dir });
    expect(config.policyServer.policyFile).toBe(path.join(dir, 'policy.yaml'));
  });

  it('reads YAML and JSON policies alike', async () => {
    const yaml = await readPolicyFile(write('p.yaml', 'version: 2\nservers:\n  - id: deny-spam\n    action: deny\n    servers: ["*.spam.example"]\n'));
    const json = await readPolicyFile(write('p.json', JSON.stringify({ version: 2, servers: [{ id: 'deny-spam', action: 'deny', servers: ['*.spam.example'] }] })));
    expect(json.policyVersion).toBe(yaml.policyVersion);
  });

  it.each([
    ['not YAML', 'version: [1', 'is not valid YAML or JSON'],
    ['a key twice', 'version: 1\nversion: 2\n', 'is not valid YAML or JSON'],
    ['a schema problem', 'version: 1\nservers: [{id: x, action: nope, servers: [a]}]\n', 'servers.0.action must be one of allow, deny'],
  ])('refuses a file with %s, naming the file', async (_what, text, problem) => {
    const file = write('bad.yaml', text);
    const error = await readPolicyFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).message).toContain(file);
    expect((error as PolicyError).message).toContain(problem);
  });

  it('refuses a file that is not there', async () => {
    await expect(readPolicyFile(path.join(dir, 'missing.yaml'))).rejects.toThrow('cannot read policy file');
  });
});
