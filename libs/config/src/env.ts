// FEDGATE_* environment variables. The short names below cover what operators set most; any key can
// also be set as FEDGATE_<SECTION>__<KEY> with each segment in SCREAMING_SNAKE_CASE, e.g.
// FEDGATE_EGRESS__BACKOFF__MAX_MS=600000 sets egress.backoff.maxMs. Lists are comma-separated;
// booleans are true/false/1/0/yes/no. Variables without `__` that are not listed here are ignored
// (FEDGATE_CONFIG names the config file; FEDGATE_TEST_* belong to the test suites).
import { ConfigError } from './errors';
import { schemaAt } from './schema';

export const ENV_ALIASES: Readonly<Record<string, string>> = {
  FEDGATE_SERVER_NAME: 'serverName',
  FEDGATE_MODE: 'mode',
  FEDGATE_DATA_DIR: 'dataDir',
  FEDGATE_LISTEN_ADDRESS: 'federation.bindAddress',
  FEDGATE_LISTEN_PORT: 'federation.port',
  FEDGATE_FEDERATION_ALLOW_PRIVATE: 'federation.allowPrivateAddresses',
  FEDGATE_FEDERATION_ALLOWLIST: 'federation.addressAllowlist',
  FEDGATE_CLIENT_LISTEN_ADDRESS: 'clientServer.bindAddress',
  FEDGATE_CLIENT_LISTEN_PORT: 'clientServer.port',
  FEDGATE_UNAUTHENTICATED_LEGACY_MEDIA: 'clientServer.unauthenticatedLegacyMedia',
  FEDGATE_TLS_CERT: 'tls.cert',
  FEDGATE_TLS_KEY: 'tls.key',
  FEDGATE_TLS_CA: 'tls.ca',
  FEDGATE_SIGNING_KEY: 'signingKey.path',
  FEDGATE_NATS_URL: 'nats.url',
  FEDGATE_BUS_PREFIX: 'bus.prefix',
  FEDGATE_MONGO_URL: 'mongo.url',
  FEDGATE_MONGO_DATABASE: 'mongo.database',
  FEDGATE_SQLITE_PATH: 'sqlite.path',
  FEDGATE_AS_REGISTRATIONS: 'appServices.registrationFiles',
  FEDGATE_MAX_UPLOAD_BYTES: 'limits.maxUploadBytes',
  FEDGATE_DEFAULT_ROOM_VERSION: 'rooms.defaultVersion',
  FEDGATE_LOG_LEVEL: 'log.level',
  FEDGATE_OTLP_ENDPOINT: 'telemetry.otlpEndpoint',
  FEDGATE_METRICS_PORT: 'telemetry.metricsPort',
  FEDGATE_METRICS_LISTEN_ADDRESS: 'telemetry.metricsBindAddress',
};

const PREFIX = 'FEDGATE_';

export interface EnvSetting {
  key: string;
  value: unknown;
  variable: string;
}

function camelCase(snake: string): string {
  return snake.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The dotted config key a variable sets, or undefined when the variable is not a config setting. */
export function envVariableKey(variable: string): string | undefined {
  if (variable in ENV_ALIASES) return ENV_ALIASES[variable];
  if (!variable.startsWith(PREFIX) || !variable.includes('__')) return undefined;
  return variable.slice(PREFIX.length).split('__').map(camelCase).join('.');
}

function parseScalar(type: string | undefined, raw: string, variable: string, key: string): unknown {
  const bad = (expected: string) => new ConfigError(`${variable}=${JSON.stringify(raw)}: ${key} must be ${expected}`, key);
  switch (type) {
    case 'integer':
      if (!/^-?\d+$/.test(raw.trim())) throw bad('an integer');
      return Number(raw.trim());
    case 'number':
      if (raw.trim() === '' || !Number.isFinite(Number(raw))) throw bad('a number');
      return Number(raw);
    case 'boolean': {
      const value = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(value)) return true;
      if (['false', '0', 'no', 'off'].includes(value)) return false;
      throw bad('a boolean (true/false)');
    }
    default:
      return raw;
  }
}

/** The settings FEDGATE_* variables make, typed by the schema; throws ConfigError on a bad one. */
export function readEnvironment(env: NodeJS.ProcessEnv): EnvSetting[] {
  const settings: EnvSetting[] = [];
  for (const [variable, raw] of Object.entries(env)) {
    if (raw === undefined) continue;
    const key = envVariableKey(variable);
    if (key === undefined) continue;
    const node = schemaAt(key);
    if (!node || node.type === 'object') {
      throw new ConfigError(`${variable}: there is no configuration key ${key}`, key);
    }
    const value =
      node.type === 'array'
        ? raw.split(',').map((item) => item.trim()).filter((item) => item !== '').map((item) => parseScalar(node.items?.type, item, variable, key))
        : parseScalar(node.type, raw, variable, key);
    settings.push({ key, value, variable });
  }
  return settings;
}
