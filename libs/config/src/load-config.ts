// Reads the configuration: defaults < YAML file < FEDGATE_* environment, validated against the schema.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import type { FedgateConfig } from './config';
import { defaultSettings } from './defaults';
import { readEnvironment } from './env';
import { ConfigError } from './errors';
import { configSchema } from './schema';

export interface LoadConfigOptions {
  /** Command-line arguments to look for `--config PATH` in; defaults to process.argv. */
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Relative paths (config file, data dir, key and certificate files) resolve against this. */
  cwd?: string;
  /** Settings applied over the environment; for tests and embedding. */
  overrides?: Record<string, unknown>;
}

export const DEFAULT_CONFIG_FILE = 'fedgate.yaml';

type Tree = Record<string, unknown>;
const isTree = (value: unknown): value is Tree => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Where each key's value came from, for error messages. */
type Sources = Map<string, string>;

function mergeInto(target: Tree, source: Tree, origin: string, sources: Sources, prefix = ''): void {
  for (const [name, value] of Object.entries(source)) {
    const key = prefix ? `${prefix}.${name}` : name;
    if (isTree(value) && isTree(target[name])) {
      mergeInto(target[name] as Tree, value, origin, sources, key);
    } else {
      target[name] = isTree(value) ? structuredClone(value) : value;
      sources.set(key, origin);
    }
  }
}

function setKey(tree: Tree, key: string, value: unknown): void {
  const segments = key.split('.');
  let node = tree;
  for (const segment of segments.slice(0, -1)) {
    if (!isTree(node[segment])) node[segment] = {};
    node = node[segment] as Tree;
  }
  node[segments[segments.length - 1]!] = value;
}

function getKey(tree: Tree, key: string): unknown {
  let node: unknown = tree;
  for (const segment of key.split('.')) node = isTree(node) ? node[segment] : undefined;
  return node;
}

/** `--config PATH` / `--config=PATH`, else FEDGATE_CONFIG, else ./fedgate.yaml when present. */
export function findConfigFile(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): { file: string; explicit: boolean } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') {
      const value = argv[i + 1];
      if (!value) throw new ConfigError('--config needs a file path');
      return { file: path.resolve(cwd, value), explicit: true };
    }
    if (arg.startsWith('--config=')) return { file: path.resolve(cwd, arg.slice('--config='.length)), explicit: true };
  }
  if (env.FEDGATE_CONFIG) return { file: path.resolve(cwd, env.FEDGATE_CONFIG), explicit: true };
  const fallback = path.resolve(cwd, DEFAULT_CONFIG_FILE);
  return existsSync(fallback) ? { file: fallback, explicit: false } : undefined;
}

function readConfigFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${document.errors[0]!.message}`);
  }
  const content: unknown = document.toJS();
  if (content === null || content === undefined) return {};
  if (!isTree(content)) throw new ConfigError(`config file ${file} must hold a mapping of keys to values`);
  return content;
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(configSchema);

function describeValidationError(error: ErrorObject, merged: Tree, sources: Sources): string {
  const key = error.instancePath.slice(1).replaceAll('/', '.');
  if (error.keyword === 'additionalProperties') {
    const unknown = [key, (error.params as { additionalProperty: string }).additionalProperty].filter(Boolean).join('.');
    return `unknown key ${unknown}${from(sources, unknown)}`;
  }
  if (error.keyword === 'required') {
    const missing = [key, (error.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.');
    return `${missing} is required`;
  }
  const value = getKey(merged, key);
  const expected = error.keyword === 'enum' ? `one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` : error.message;
  return `${key} ${expected?.startsWith('must') ? expected : `must be ${expected}`} (got ${JSON.stringify(value)}${from(sources, key)})`;
}

function from(sources: Sources, key: string): string {
  const origin = sources.get(key);
  return origin ? ` from ${origin}` : '';
}

function keyOf(error: ErrorObject): string {
  const key = error.instancePath.slice(1).replaceAll('/', '.');
  const extra = (error.params as { additionalProperty?: string; missingProperty?: string });
  return [key, extra.additionalProperty ?? extra.missingProperty].filter(Boolean).join('.');
}

/** Absolute paths, data-dir-derived defaults, and the checks the schema cannot express. */
function resolve(settings: Tree, cwd: string): FedgateConfig {
  const config = settings as unknown as FedgateConfig;
  const absolute = (p: string) => path.resolve(cwd, p);
  config.dataDir = absolute(config.dataDir);
  const inData = (...parts: string[]) => path.join(config.dataDir, ...parts);
  const tls = config.tls as Partial<FedgateConfig['tls']>;
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ConfigError(`tls.cert and tls.key must be set together (only tls.${tls.cert ? 'cert' : 'key'} is set)`, tls.cert ? 'tls.key' : 'tls.cert');
  }
  config.tls = {
    cert: tls.cert ? absolute(tls.cert) : inData('tls', 'server.crt'),
    key: tls.key ? absolute(tls.key) : inData('tls', 'server.key'),
    selfSigned: tls.cert === undefined,
    ca: (tls.ca ?? []).map(absolute),
  };
  config.signingKey = { path: config.signingKey.path ? absolute(config.signingKey.path) : inData('signing.key') };
  const policyServer = config.policyServer as Partial<FedgateConfig['policyServer']>;
  if (policyServer.enabled && !policyServer.policyFile) throw new ConfigError('policyServer.policyFile is required when policyServer.enabled is true', 'policyServer.policyFile');
  config.policyServer = {
    enabled: policyServer.enabled ?? false,
    ...(policyServer.policyFile ? { policyFile: absolute(policyServer.policyFile) } : {}),
    keyPath: policyServer.keyPath ? absolute(policyServer.keyPath) : inData('policy_server.key'),
    reloadIntervalMs: policyServer.reloadIntervalMs ?? 2_000,
  };
  config.sqlite = { path: config.sqlite.path ? absolute(config.sqlite.path) : inData('fedgate.sqlite') };
  config.appServices = { registrationFiles: config.appServices.registrationFiles.map(absolute) };
  if (config.egress.backoff.maxMs < config.egress.backoff.initialMs) {
    throw new ConfigError(
      `egress.backoff.maxMs (${config.egress.backoff.maxMs}) must not be below egress.backoff.initialMs (${config.egress.backoff.initialMs})`,
      'egress.backoff.maxMs',
    );
  }
  checkReplicas(config);
  return config;
}

/** A replica index must name one of `count` replicas, and every replica must own at least one partition. */
function checkReplicas(config: FedgateConfig): void {
  const partitionsOf = { stateResolver: config.partitions.rooms, egress: Math.max(config.partitions.rooms, config.partitions.destinations), chatSync: config.partitions.rooms };
  for (const stage of ['stateResolver', 'egress', 'chatSync'] as const) {
    const share = config.replicas[stage];
    if (config.replicas.ownership === 'leases' && share.count !== 1) {
      throw new ConfigError(`replicas.${stage}.count (${share.count}) is a static share, but replicas.ownership is leases: replicas share partitions by themselves`, `replicas.${stage}.count`);
    }
    if (share.index >= share.count) {
      throw new ConfigError(`replicas.${stage}.index (${share.index}) must be below replicas.${stage}.count (${share.count}): indexes run from 0 to count - 1`, `replicas.${stage}.index`);
    }
    if (share.count > partitionsOf[stage]) {
      throw new ConfigError(
        `replicas.${stage}.count (${share.count}) exceeds the ${partitionsOf[stage]} partitions it splits: some replicas would own nothing`,
        `replicas.${stage}.count`,
      );
    }
  }
}

/** Loads, validates and resolves the configuration. Throws ConfigError naming the bad key and value. */
export function loadConfig(options: LoadConfigOptions = {}): FedgateConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const sources: Sources = new Map();
  const merged = defaultSettings();

  const configFile = findConfigFile(options.argv ?? process.argv.slice(2), env, cwd);
  if (configFile) {
    if (configFile.explicit && !existsSync(configFile.file)) throw new ConfigError(`config file ${configFile.file} does not exist`);
    mergeInto(merged, readConfigFile(configFile.file), `config file ${configFile.file}`, sources);
  }
  for (const setting of readEnvironment(env)) {
    setKey(merged, setting.key, setting.value);
    sources.set(setting.key, setting.variable);
  }
  if (options.overrides) mergeInto(merged, options.overrides, 'overrides', sources);

  if (!validate(merged)) {
    const errors = validate.errors ?? [];
    const lines = errors.map((error) => describeValidationError(error, merged, sources));
    const message = lines.length === 1 ? `invalid configuration: ${lines[0]}` : `invalid configuration:\n  ${lines.join('\n  ')}`;
    throw new ConfigError(message, errors[0] ? keyOf(errors[0]) : undefined);
  }
  return resolve(merged, cwd);
}
