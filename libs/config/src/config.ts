// The one typed configuration object every fedgate process reads. Paths are absolute once loaded.

export type DeploymentMode = 'embedded' | 'distributed';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ListenerConfig {
  bindAddress: string;
  /** 0 picks a free port; the started listener reports the real one. */
  port: number;
}

export interface FederationConfig extends ListenerConfig {
  /** Allow outbound federation to loopback/private addresses (tests, private deployments). */
  allowPrivateAddresses: boolean;
  /** Addresses (CIDR, single address or hostname) outbound federation may reach although not public. */
  addressAllowlist: string[];
  /** Largest request body the federation listener reads; larger ones get 413 M_TOO_LARGE. */
  maxRequestBytes: number;
  /** What a peer is told to wait (503 + `Retry-After`) when our bus or store failed under its transaction. */
  unavailableRetryAfterMs: number;
  /**
   * Notaries asked for a server's keys when the server itself cannot be reached (`/_matrix/key/v2/query`).
   * `verifyKeys` (key ID → unpadded base64 public key) pins the notary's own keys; otherwise they are fetched.
   */
  trustedKeyServers: TrustedKeyServer[];
  /** Per-origin inbound limits, as Synapse's `rc_federation` (window_size, sleep_limit, sleep_delay, reject_limit, concurrent). */
  rateLimit: FederationRateLimitConfig;
}

export interface FederationRateLimitConfig {
  windowMs: number;
  /** Requests per window before each further one is delayed by `sleepDelayMs`. */
  sleepLimit: number;
  sleepDelayMs: number;
  /** Requests waiting (delayed or queued) beyond which new ones get 429 M_LIMIT_EXCEEDED. */
  rejectLimit: number;
  /** Requests of one origin processed at once. */
  concurrent: number;
}

export interface TrustedKeyServer {
  serverName: string;
  verifyKeys?: Record<string, string>;
}

export interface ClientServerConfig extends ListenerConfig {
  /** The plain-HTTP client-server listener the application services talk to. */
  enabled: boolean;
  /**
   * Serve the deprecated `/_matrix/media/v3/download|thumbnail` without an access token (off unless set:
   * anyone who reaches the listener could read any media this server holds or fetches).
   */
  unauthenticatedLegacyMedia?: boolean;
}

export interface TlsConfig {
  /** PEM certificate chain for the federation listener. */
  cert: string;
  /** PEM private key for `cert`. */
  key: string;
  /** True when cert/key were not configured: a self-signed pair is generated under the data dir. */
  selfSigned: boolean;
  /** Extra PEM CA files trusted when this server calls other servers. */
  ca: string[];
}

export interface EgressBackoffConfig {
  initialMs: number;
  multiplier: number;
  maxMs: number;
  /** 0..1: each delay is scaled by a random factor in [1 - jitter, 1 + jitter]. */
  jitter: number;
}

export interface FedgateConfig {
  /** This server's Matrix server name: host, optionally `:port`. */
  serverName: string;
  mode: DeploymentMode;
  dataDir: string;
  federation: FederationConfig;
  clientServer: ClientServerConfig;
  tls: TlsConfig;
  signingKey: { path: string };
  /** One server, or a cluster's servers separated by commas (`nats://n1:4222,nats://n2:4222`). */
  nats: { url: string };
  /** Subject/stream prefix of the bus; instances sharing one NATS need different ones. */
  /**
   * `publishRetryMs`: how long a publish keeps retrying (e.g. across a NATS restart) before it fails.
   * `streamReplicas`: copies of each JetStream stream (and its consumers) on a NATS cluster (3 on a 3-node
   * cluster: one node may fail with nothing lost); 1 on a single server. Ignored by the embedded bus.
   */
  bus: { prefix: string; publishRetryMs: number; streamReplicas: number };
  mongo: { url: string; database: string };
  /** Embedded mode's database file. */
  sqlite: { path: string };
  /** `parkedBudgetMs`: time an inbound PDU parked off its room partition may spend on remote servers (gap filling). */
  partitions: { rooms: number; destinations: number; parkedBudgetMs: number };
  /**
   * `idleConnectionTimeoutMs`: an outbound federation connection idle this long is closed (each open TLS connection holds
   * ~50–100 KiB of native memory; the next request resumes its TLS session).
   */
  egress: { backoff: EgressBackoffConfig; requestTimeoutMs: number; idleConnectionTimeoutMs: number };
  limits: { maxUploadBytes: number };
  /**
   * `defaultVersion`: the room version createRoom uses when the request names none (also the default
   * the capabilities endpoint advertises). Every supported version stays available on request.
   */
  rooms: { defaultVersion: string };
  appServices: { registrationFiles: string[] };
  log: { level: LogLevel };
  /**
   * Which share of the partitions this process's partitioned workers serve: replica `index` of `count`
   * owns the partitions p with p % count === index. Every replica of a stage must have the same count and
   * a distinct index; the embedded gateway is one replica of each.
   */
  replicas: {
    /**
     * `static`: each process serves its configured share. `leases`: the live replicas of each stage find each
     * other through leases in the store and split the partitions themselves (scale without reconfiguring; a
     * dead replica's share moves `leaseTtlMs` after its last renewal); shares must then be left at 0 of 1.
     */
    ownership: 'static' | 'leases';
    leaseTtlMs: number;
    /** This process among the replicas (logs, metrics, spans, leases); default `<hostname>-<pid>`. Unique per live process. */
    instanceId?: string;
    stateResolver: ReplicaShare;
    egress: ReplicaShare;
    chatSync: ReplicaShare;
  };
  /**
   * `metricsPort` starts a dedicated /metrics listener on `metricsBindAddress` (default loopback:
   * /metrics is unauthenticated; bind it wider only on a network only the scraper reaches).
   */
  telemetry: { otlpEndpoint?: string; metricsPort?: number; metricsBindAddress?: string };
  keyRing: KeyRingConfig;
  policyServer: PolicyServerConfig;
  thirdPartyInvites: ThirdPartyInvitesConfig;
  memory: MemoryConfig;
}

/** Process memory (docs/operations.md, "Memory"). */
export interface MemoryConfig {
  /**
   * How far V8 lets the old generation grow past what was live after the last full collection before collecting
   * again, in percent (V8's `--heap-growing-percent`). 0 leaves V8's own choice, up to 4× the live size.
   */
  heapGrowingPercent: number;
}

/**
 * Third-party invites sent by application-service users (`POST /rooms/{roomId}/invite` with `id_server`):
 * only the identity servers listed here are asked; any other `id_server` is refused with M_SERVER_NOT_TRUSTED.
 * Empty (the default) refuses them all.
 */
export interface ThirdPartyInvitesConfig {
  /** `serverName` as clients give it in `id_server` (host[:port]); `baseUrl` default `https://<serverName>`. */
  identityServers: { serverName: string; baseUrl?: string }[];
  /** Bound on each request to an identity server (hash_details, lookup, store-invite). */
  requestTimeoutMs: number;
}

/** Being the policy server of rooms that name this server in `m.room.policy` (docs/governance.md). */
export interface PolicyServerConfig {
  enabled: boolean;
  /** The operator's policy (YAML or JSON); required when enabled. Reloaded when it changes. */
  policyFile?: string;
  /** The policy signing key (`ed25519 policy_server <seed>`), never the federation key; default `<dataDir>/policy_server.key`. */
  keyPath: string;
  /** How often the policy file is checked for changes. */
  reloadIntervalMs: number;
}

/** What requests from the internet may make the key ring do (remote key fetches happen before authentication). */
export interface KeyRingConfig {
  /** Servers whose keys are held in memory; the least recently used are forgotten first. */
  maxCachedServers: number;
  /** Key fetches one client address may cause at once, refilled at `fetchesPerAddressPerMinute`. */
  fetchesPerAddressBurst: number;
  fetchesPerAddressPerMinute: number;
  /** Key fetches all client addresses together may cause per second. */
  fetchesPerSecond: number;
}

export interface ReplicaShare {
  index: number;
  count: number;
}
