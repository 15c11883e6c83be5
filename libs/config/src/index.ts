export type { FedgateConfig, DeploymentMode, LogLevel, ListenerConfig, FederationConfig, ClientServerConfig, TlsConfig, EgressBackoffConfig, ReplicaShare, PolicyServerConfig, ThirdPartyInvitesConfig, MemoryConfig } from './config';
export { ConfigError } from './errors';
export { loadConfig, findConfigFile, DEFAULT_CONFIG_FILE, type LoadConfigOptions } from './load-config';
export { ENV_ALIASES, ENV_NOT_SETTINGS, envVariableKey, readEnvironment } from './env';
export { configSchema, SERVER_NAME_PATTERN } from './schema';
export { defaultSettings } from './defaults';
export { serverNameHost } from './server-name';
export { parsePolicyText, readPolicyFile } from './policy-file';
