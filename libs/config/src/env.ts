// FEDGATE_* environment variables. The short names below cover what operators set most; any key can
// also be set as FEDGATE_<SECTION>__<KEY> with each segment in SCREAMING_SNAKE_CASE, e.g.
// FEDGATE_EGRESS__BACKOFF__MAX_MS=600000 sets egress.backoff.maxMs. Lists are comma-separated;
// booleans are true/false/1/0/yes/no. Any other FEDGATE_* name is refused at start (a misspelt name
// silently ignored gave, for one, a replica that owned every partition), except the few names below
// that are not settings: FEDGATE_CONFIG names the config file, FEDGATE_TEST_* and the tool names belong
// to the test suites and the build.
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
  FEDGATE_OWNERSHIP: 'replicas.ownership',
  FEDGATE_INSTANCE_ID: 'replicas.instanceId',
  FEDGATE_REPLICA_INDEX: 'replicas.stateResolver.index',
  FEDGATE_REPLICA_COUNT: 'replicas.stateResolver.count',
  FEDGATE_EGRESS_REPLICA_INDEX: 'replicas.egress.index',
  FEDGATE_EGRESS_REPLICA_COUNT: 'replicas.egress.count',
  FEDGATE_CHAT_SYNC_REPLICA_INDEX: 'replicas.chatSync.index',
  FEDGATE_CHAT_SYNC_REPLICA_COUNT: 'replicas.chatSync.count',
};

/** FEDGATE_* names that are not settings but are read by something else, so they are not refused. */
export const ENV_NOT_SETTINGS: readonly string[] = [
  'FEDGATE_CONFIG',
  'FEDGATE_OTLP_TRACES_ENDPOINT',
  'FEDGATE_BUILD_QUIET',
  'FEDGATE_SYNAPSE_PYTHON',
  'FEDGATE_SYNAPSE_REQUIREMENT',
  'FEDGATE_KEEP_SYNAPSE_DATA',
  'FEDGATE_FUZZ_SEED',
];
const NOT_SETTINGS_PREFIXES = ['FEDGATE_TEST_'];

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

function isNotSetting(variable: string): boolean {
  return ENV_NOT_SETTINGS.includes(variable) || NOT_SETTINGS_PREFIXES.some((prefix) => variable.startsWith(prefix));
}

/** Levenshtein distance, for the "did you mean" of a misspelt name. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function unknownVariable(variable: string): ConfigError {
  const known = [...Object.keys(ENV_ALIASES), ...ENV_NOT_SETTINGS];
  const nearest = known.map((name) => ({ name, distance: editDistance(variable, name) })).sort((a, b) => a.distance - b.distance)[0];
  const hint = nearest && nearest.distance <= 3 ? ` (did you mean ${nearest.name}?)` : '';
  return new ConfigError(
    `unknown environment variable ${variable}${hint}: FEDGATE_* names are the documented ones or FEDGATE_<SECTION>__<KEY>`,
  );
}

/** The settings FEDGATE_* variables make, typed by the schema; throws ConfigError on a bad or unknown one. */
export function readEnvironment(env: NodeJS.ProcessEnv): EnvSetting[] {
  const settings: EnvSetting[] = [];
  for (const [variable, raw] of Object.entries(env)) {
    if (raw === undefined || !variable.startsWith(PREFIX) || isNotSetting(variable)) continue;
    const key = envVariableKey(variable);
    if (key === undefined) throw unknownVariable(variable);
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
