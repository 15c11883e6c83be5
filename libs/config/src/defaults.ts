import { DEFAULT_ROOM_VERSION } from '@fedgate/protocol';
import type { FedgateConfig } from './config';

const MiB = 1024 * 1024;

/**
 * Defaults before path resolution. Keys that depend on the data dir (`signingKey.path`, `tls.cert`,
 * `tls.key`, `sqlite.path`) are left out here and derived from `dataDir` when the config is loaded.
 */
export function defaultSettings(): Record<string, unknown> {
  return {
    serverName: 'localhost:8448',
    mode: 'embedded',
    dataDir: './data',
    federation: { bindAddress: '0.0.0.0', port: 8448, allowPrivateAddresses: false, addressAllowlist: [], maxRequestBytes: 12 * MiB, unavailableRetryAfterMs: 5_000, trustedKeyServers: [], rateLimit: { windowMs: 1000, sleepLimit: 10, sleepDelayMs: 500, rejectLimit: 50, concurrent: 3 } },
    clientServer: { enabled: true, bindAddress: '127.0.0.1', port: 8008 },
    tls: { ca: [] },
    signingKey: {},
    nats: { url: 'nats://127.0.0.1:4222' },
    // publishRetryMs: how long a publish keeps trying across a NATS restart before the caller sees the failure
    // (ingress then answers the peer 503 with federation.unavailableRetryAfterMs).
    bus: { prefix: 'fedgate', publishRetryMs: 15_000, streamReplicas: 1 },
    mongo: { url: 'mongodb://127.0.0.1:27017', database: 'fedgate' },
    sqlite: {},
    partitions: { rooms: 16, destinations: 16, parkedBudgetMs: 5 * 60_000 },
    // Retry timings as Synapse's defaults (destination_min_retry_interval 10 min, ×2, at most a day); a
    // destination is retried at once when it sends us an authenticated request.
    egress: { backoff: { initialMs: 10 * 60_000, multiplier: 2, maxMs: 24 * 60 * 60_000, jitter: 0.2 }, requestTimeoutMs: 60_000, idleConnectionTimeoutMs: 30_000 },
    limits: { maxUploadBytes: 50 * MiB },
    // What Synapse creates when not configured (DEFAULT_ROOM_VERSION of Synapse 1.163, the version the
    // interop suite runs against). Bridges that read m.room.create's `creator` need "10" or lower.
    rooms: { defaultVersion: DEFAULT_ROOM_VERSION },
    appServices: { registrationFiles: [] },
    log: { level: 'info' },
    replicas: { ownership: 'static', leaseTtlMs: 10_000, stateResolver: { index: 0, count: 1 }, egress: { index: 0, count: 1 }, chatSync: { index: 0, count: 1 } },
    telemetry: {},
    // Bounds on what requests from the internet (forged X-Matrix origins, notary queries) may make the key ring do.
    // Being a room's policy server (issue 17): off until the operator names a policy file.
    policyServer: { enabled: false, reloadIntervalMs: 2_000 },
    // No identity server is trusted until the operator lists one (docs/chat-platform.md, third-party invites).
    thirdPartyInvites: { identityServers: [], requestTimeoutMs: 10_000 },
    keyRing: { maxCachedServers: 10_000, fetchesPerAddressBurst: 10, fetchesPerAddressPerMinute: 30, fetchesPerSecond: 20 },
    // A burst of 5,000 PDUs grew the old generation to 4× its live size (peak RSS 258–290 MiB); at 1.3× it peaked at 160.
    memory: { heapGrowingPercent: 30 },
  } satisfies Partial<Record<keyof FedgateConfig, unknown>>;
}
