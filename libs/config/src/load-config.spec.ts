import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from './index';

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const load = (env: NodeJS.ProcessEnv = {}, argv: string[] = []) => loadConfig({ env, argv, cwd: dir });
  const writeYaml = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const errorOf = (fn: () => unknown): ConfigError => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  it('has working defaults with paths under the data dir', () => {
    const config = load();
    expect(config.serverName).toBe('localhost:8448');
    expect(config.mode).toBe('embedded');
    expect(config.dataDir).toBe(path.join(dir, 'data'));
    expect(config.federation).toEqual({
      bindAddress: '0.0.0.0',
      port: 8448,
      allowPrivateAddresses: false,
      addressAllowlist: [],
      maxRequestBytes: 12 * 1024 * 1024,
      unavailableRetryAfterMs: 5_000,
      trustedKeyServers: [],
      rateLimit: { windowMs: 1000, sleepLimit: 10, sleepDelayMs: 500, rejectLimit: 50, concurrent: 3 },
    });
    // Synapse's retry defaults: 10 minutes, doubling, at most a day.
    expect(config.egress.backoff).toEqual({ initialMs: 600_000, multiplier: 2, maxMs: 86_400_000, jitter: 0.2 });
    expect(config.bus).toEqual({ prefix: 'fedgate', publishRetryMs: 15_000, streamReplicas: 1 });
    expect(config.clientServer).toEqual({ enabled: true, bindAddress: '127.0.0.1', port: 8008 });
    expect(config.signingKey.path).toBe(path.join(dir, 'data', 'signing.key'));
    expect(config.tls).toEqual({
      cert: path.join(dir, 'data', 'tls', 'server.crt'),
      key: path.join(dir, 'data', 'tls', 'server.key'),
      selfSigned: true,
      ca: [],
    });
    expect(config.limits.maxUploadBytes).toBe(50 * 1024 * 1024);
    expect(config.rooms.defaultVersion).toBe('12');
    expect(config.partitions.rooms).toBeGreaterThan(0);
    expect(config.partitions.parkedBudgetMs).toBe(5 * 60_000);
    expect(config.appServices.registrationFiles).toEqual([]);
  });

  it('reads ./fedgate.yaml when present, and the environment overrides it', () => {
    writeYaml('fedgate.yaml', 'serverName: file.example\nfederation:\n  port: 9000\n  bindAddress: 127.0.0.1\nlog:\n  level: debug\n');
    const fromFile = load();
    expect(fromFile.serverName).toBe('file.example');
    expect(fromFile.federation.port).toBe(9000);
    expect(fromFile.federation.allowPrivateAddresses).toBe(false); // defaults still fill the section
    const fromEnv = load({ FEDGATE_LISTEN_PORT: '9100', FEDGATE_LOG_LEVEL: 'warn' });
    expect(fromEnv.federation.port).toBe(9100);
    expect(fromEnv.federation.bindAddress).toBe('127.0.0.1');
    expect(fromEnv.log.level).toBe('warn');
  });

  it('takes the file from --config, then FEDGATE_CONFIG', () => {
    writeYaml('fedgate.yaml', 'serverName: default.example\n');
    writeYaml('a.yaml', 'serverName: a.example\n');
    writeYaml('b.yaml', 'serverName: b.example\n');
    expect(load({ FEDGATE_CONFIG: 'b.yaml' }).serverName).toBe('b.example');
    expect(load({ FEDGATE_CONFIG: 'b.yaml' }, ['--config', 'a.yaml']).serverName).toBe('a.example');
    expect(load({}, ['--config=a.yaml']).serverName).toBe('a.example');
    expect(errorOf(() => load({}, ['--config', 'missing.yaml'])).message).toMatch(/missing\.yaml does not exist/);
  });

  it('maps the documented variables and typed parsing', () => {
    const config = load({
      FEDGATE_SERVER_NAME: 'gw.example:443',
      FEDGATE_DATA_DIR: 'state',
      FEDGATE_MODE: 'distributed',
      FEDGATE_NATS_URL: 'nats://nats:4222',
      FEDGATE_MONGO_URL: 'mongodb://mongo:27017',
      FEDGATE_TLS_CERT: 'certs/gw.crt',
      FEDGATE_TLS_KEY: 'certs/gw.key',
      FEDGATE_TLS_CA: 'ca1.pem, ca2.pem',
      FEDGATE_FEDERATION_ALLOW_PRIVATE: 'yes',
      FEDGATE_OTLP_ENDPOINT: 'http://collector:4318',
      FEDGATE_METRICS_PORT: '9464',
      FEDGATE_EGRESS__BACKOFF__MAX_MS: '600000',
      FEDGATE_PARTITIONS__ROOMS: '64',
      FEDGATE_TEST_NATS_URL: 'ignored: not a setting',
    });
    expect(config.serverName).toBe('gw.example:443');
    expect(config.dataDir).toBe(path.join(dir, 'state'));
    expect(config.signingKey.path).toBe(path.join(dir, 'state', 'signing.key'));
    expect(config.mode).toBe('distributed');
    expect(config.nats.url).toBe('nats://nats:4222');
    expect(config.mongo.url).toBe('mongodb://mongo:27017');
    expect(config.tls).toEqual({
      cert: path.join(dir, 'certs', 'gw.crt'),
      key: path.join(dir, 'certs', 'gw.key'),
      selfSigned: false,
      ca: [path.join(dir, 'ca1.pem'), path.join(dir, 'ca2.pem')],
    });
    expect(config.federation.allowPrivateAddresses).toBe(true);
    expect(config.telemetry).toEqual({ otlpEndpoint: 'http://collector:4318', metricsPort: 9464 });
    expect(config.egress.backoff.maxMs).toBe(600000);
    expect(config.partitions.rooms).toBe(64);
  });

  it('names the variable and value when an environment value does not parse', () => {
    const err = errorOf(() => load({ FEDGATE_LISTEN_PORT: 'eighty' }));
    expect(err.key).toBe('federation.port');
    expect(err.message).toContain('FEDGATE_LISTEN_PORT="eighty"');
    expect(errorOf(() => load({ FEDGATE_FEDERATION_ALLOW_PRIVATE: 'maybe' })).message).toMatch(/must be a boolean/);
    expect(errorOf(() => load({ FEDGATE_FEDERATION__PROT: '1' })).message).toMatch(/no configuration key federation\.prot/);
  });

  it('names key, value and source when the schema rejects a value', () => {
    const err = errorOf(() => load({ FEDGATE_LISTEN_PORT: '70000' }));
    expect(err.key).toBe('federation.port');
    expect(err.message).toMatch(/federation\.port must be <= 65535 \(got 70000 from FEDGATE_LISTEN_PORT\)/);

    const file = writeYaml('bad.yaml', 'mode: cluster\nserverName: "not a name"\nfederation:\n  prot: 1\n');
    const fileErr = errorOf(() => load({}, ['--config', file]));
    expect(fileErr.message).toContain(`mode must be one of embedded, distributed (got "cluster" from config file ${file})`);
    expect(fileErr.message).toContain('serverName must match pattern');
    expect(fileErr.message).toContain('"not a name"');
    expect(fileErr.message).toContain('unknown key federation.prot');
  });

  it('default room version (issue 15): configurable from file and environment, a supported version only', () => {
    expect(load({ FEDGATE_DEFAULT_ROOM_VERSION: '10' }).rooms.defaultVersion).toBe('10');
    expect(load({}, ['--config', writeYaml('rooms.yaml', 'rooms:\n  defaultVersion: "11"\n')]).rooms.defaultVersion).toBe('11');
    expect(errorOf(() => load({ FEDGATE_DEFAULT_ROOM_VERSION: '99' })).message).toMatch(/rooms\.defaultVersion must be one of .*12/);
  });

  it('reads trusted key servers (notaries) from the file, optionally with pinned keys', () => {
    writeYaml('fedgate.yaml', 'federation:\n  trustedKeyServers:\n    - serverName: notary.example\n      verifyKeys:\n        "ed25519:a": "Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw"\n    - serverName: other.example\n');
    expect(load({}).federation.trustedKeyServers).toEqual([
      { serverName: 'notary.example', verifyKeys: { 'ed25519:a': 'Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw' } },
      { serverName: 'other.example' },
    ]);
    const bad = writeYaml('bad-notary.yaml', 'federation:\n  trustedKeyServers:\n    - verifyKeys: {}\n');
    expect(errorOf(() => load({}, ['--config', bad])).message).toMatch(/trustedKeyServers/);
  });

  it('refuses a file that is not a YAML mapping', () => {
    expect(errorOf(() => load({}, ['--config', writeYaml('list.yaml', '- a\n- b\n')])).message).toMatch(/must hold a mapping/);
    expect(errorOf(() => load({}, ['--config', writeYaml('broken.yaml', 'a: [1,\n')])).message).toMatch(/not valid YAML/);
    expect(load({}, ['--config', writeYaml('empty.yaml', '')]).serverName).toBe('localhost:8448');
  });

  it('needs tls.cert and tls.key together, and a sane backoff', () => {
    expect(errorOf(() => load({ FEDGATE_TLS_CERT: 'a.crt' })).key).toBe('tls.key');
    expect(errorOf(() => load({ FEDGATE_EGRESS__BACKOFF__MAX_MS: '10', FEDGATE_EGRESS__BACKOFF__INITIAL_MS: '100' })).key).toBe('egress.backoff.maxMs');
  });

  it('issue 19: idle outbound federation connections close after egress.idleConnectionTimeoutMs (30 s by default, at least 1 s)', () => {
    expect(load().egress.idleConnectionTimeoutMs).toBe(30_000);
    expect(load({ FEDGATE_EGRESS__IDLE_CONNECTION_TIMEOUT_MS: '120000' }).egress.idleConnectionTimeoutMs).toBe(120_000);
    expect(errorOf(() => load({ FEDGATE_EGRESS__IDLE_CONNECTION_TIMEOUT_MS: '10' })).key).toBe('egress.idleConnectionTimeoutMs');
  });

  it('accepts IPv6 and IPv4 server names', () => {
    expect(load({ FEDGATE_SERVER_NAME: '[::1]:8448' }).serverName).toBe('[::1]:8448');
    expect(load({ FEDGATE_SERVER_NAME: '10.0.0.1' }).serverName).toBe('10.0.0.1');
  });

  // Issue 12, config you can trust: a misspelt FEDGATE_* name was ignored (a replica that owned everything).
  it('refuses an unknown FEDGATE_* name at start, naming it and the nearest known one', () => {
    const err = errorOf(() => load({ FEDGATE_REPLICA_INDX: '1' }));
    expect(err.message).toMatch(/unknown environment variable FEDGATE_REPLICA_INDX \(did you mean FEDGATE_REPLICA_INDEX\?\)/);
    expect(errorOf(() => load({ FEDGATE_SOMETHING_ELSE: 'x' })).message).toMatch(/unknown environment variable FEDGATE_SOMETHING_ELSE/);
    // Names that are not settings but are read elsewhere are let through.
    expect(() =>
      load({ FEDGATE_CONFIG: '', FEDGATE_TEST_MONGO_URL: 'x', FEDGATE_OTLP_TRACES_ENDPOINT: 'http://c', FEDGATE_SYNAPSE_PYTHON: 'python3', FEDGATE_BUILD_QUIET: '1' }),
    ).not.toThrow();
    // Other programs' variables are none of fedgate's business.
    expect(() => load({ NODE_ENV: 'production', FEDGATEWAY: 'x' })).not.toThrow();
  });

  // Issue 12: replica shares were read from the environment unvalidated (an egress index >= count owned nothing).
  it('reads each stage replica share from config and refuses an index outside the set or more replicas than partitions', () => {
    expect(load().replicas).toEqual({ ownership: 'static', leaseTtlMs: 10_000, stateResolver: { index: 0, count: 1 }, egress: { index: 0, count: 1 }, chatSync: { index: 0, count: 1 } });
    const config = load({
      FEDGATE_REPLICA_INDEX: '2',
      FEDGATE_REPLICA_COUNT: '3',
      FEDGATE_EGRESS_REPLICA_INDEX: '1',
      FEDGATE_EGRESS_REPLICA_COUNT: '2',
      FEDGATE_CHAT_SYNC_REPLICA_INDEX: '0',
      FEDGATE_CHAT_SYNC_REPLICA_COUNT: '4',
    });
    expect(config.replicas).toMatchObject({ stateResolver: { index: 2, count: 3 }, egress: { index: 1, count: 2 }, chatSync: { index: 0, count: 4 } });
    const outside = errorOf(() => load({ FEDGATE_EGRESS_REPLICA_INDEX: '2', FEDGATE_EGRESS_REPLICA_COUNT: '2' }));
    expect(outside.key).toBe('replicas.egress.index');
    expect(outside.message).toMatch(/replicas\.egress\.index \(2\) must be below replicas\.egress\.count \(2\)/);
    expect(errorOf(() => load({ FEDGATE_REPLICA_INDEX: '1' })).key).toBe('replicas.stateResolver.index');
    expect(errorOf(() => load({ FEDGATE_REPLICA_INDEX: '-1' })).message).toMatch(/replicas\.stateResolver\.index must be >= 0/);
    expect(errorOf(() => load({ FEDGATE_CHAT_SYNC_REPLICA_COUNT: '0' })).message).toMatch(/replicas\.chatSync\.count must be >= 1/);
    expect(errorOf(() => load({ FEDGATE_REPLICA_COUNT: 'two' })).message).toMatch(/FEDGATE_REPLICA_COUNT="two"/);
    const tooMany = errorOf(() => load({ FEDGATE_PARTITIONS__ROOMS: '4', FEDGATE_REPLICA_COUNT: '5' }));
    expect(tooMany.key).toBe('replicas.stateResolver.count');
    expect(tooMany.message).toMatch(/exceeds the 4 partitions/);
  });

  it('elastic ownership (issue 12): leases instead of static shares, not both', () => {
    expect(load({ FEDGATE_OWNERSHIP: 'leases', FEDGATE_INSTANCE_ID: 'sr-0', FEDGATE_REPLICAS__LEASE_TTL_MS: '3000' }).replicas).toMatchObject({ ownership: 'leases', instanceId: 'sr-0', leaseTtlMs: 3000 });
    const both = errorOf(() => load({ FEDGATE_OWNERSHIP: 'leases', FEDGATE_REPLICA_COUNT: '2' }));
    expect(both.key).toBe('replicas.stateResolver.count');
    expect(errorOf(() => load({ FEDGATE_OWNERSHIP: 'consul' })).message).toMatch(/replicas\.ownership must be one of static, leases/);
    expect(errorOf(() => load({ FEDGATE_INSTANCE_ID: 'has space' })).key).toBe('replicas.instanceId');
  });
});
