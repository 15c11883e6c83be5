import { ROOM_VERSIONS } from '@fedgate/protocol';

// JSON schema of the configuration (after defaults, file and environment are merged, before paths are
// resolved). Every object is closed, so a misspelt key is an error rather than silently ignored.

// host (IPv4, [IPv6] or DNS name) with an optional port: the Matrix server name grammar.
export const SERVER_NAME_PATTERN = '^(?:\\[[0-9A-Fa-f:.]{2,45}\\]|[0-9A-Za-z.-]{1,255})(?::[0-9]{1,5})?$';

const port = { type: 'integer', minimum: 0, maximum: 65535 } as const;
const path = { type: 'string', minLength: 1 } as const;
const positiveInteger = { type: 'integer', minimum: 1 } as const;
const url = (schemes: string[]) => ({ type: 'string', pattern: `^(?:${schemes.join('|')})://\\S+$` }) as const;

function closed(properties: Record<string, unknown>, required: string[] = Object.keys(properties)) {
  return { type: 'object', additionalProperties: false, properties, required } as const;
}

const replicaShare = closed({ index: { type: 'integer', minimum: 0 }, count: { ...positiveInteger, maximum: 1024 } });

const listener = { bindAddress: { type: 'string', minLength: 1 }, port };

export const configSchema = closed(
  {
    serverName: { type: 'string', pattern: SERVER_NAME_PATTERN },
    mode: { enum: ['embedded', 'distributed'] },
    dataDir: path,
    federation: closed({
      ...listener,
      allowPrivateAddresses: { type: 'boolean' },
      addressAllowlist: { type: 'array', items: { type: 'string', minLength: 1 } },
      maxRequestBytes: positiveInteger,
      unavailableRetryAfterMs: positiveInteger,
      rateLimit: closed({ windowMs: positiveInteger, sleepLimit: positiveInteger, sleepDelayMs: { type: 'integer', minimum: 0 }, rejectLimit: positiveInteger, concurrent: positiveInteger }),
      trustedKeyServers: {
        type: 'array',
        items: closed({ serverName: { type: 'string', minLength: 1 }, verifyKeys: { type: 'object', additionalProperties: { type: 'string', minLength: 1 } } }, ['serverName']),
      },
    }),
    clientServer: closed({ ...listener, enabled: { type: 'boolean' }, unauthenticatedLegacyMedia: { type: 'boolean' } }, ['bindAddress', 'port', 'enabled']),
    tls: closed({ cert: path, key: path, ca: { type: 'array', items: path } }, ['ca']),
    signingKey: closed({ path }, []),
    nats: closed({ url: url(['nats', 'tls', 'ws', 'wss']) }),
    bus: closed({ prefix: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' }, publishRetryMs: { type: 'integer', minimum: 0 }, streamReplicas: { type: 'integer', minimum: 1, maximum: 5 } }),
    mongo: closed({ url: url(['mongodb', 'mongodb\\+srv']), database: { type: 'string', minLength: 1 } }),
    sqlite: closed({ path }, []),
    partitions: closed({ rooms: { ...positiveInteger, maximum: 1024 }, destinations: { ...positiveInteger, maximum: 1024 }, parkedBudgetMs: { ...positiveInteger, minimum: 1000 } }),
    egress: closed({
      backoff: closed({
        initialMs: positiveInteger,
        multiplier: { type: 'number', minimum: 1 },
        maxMs: positiveInteger,
        jitter: { type: 'number', minimum: 0, maximum: 1 },
      }),
      requestTimeoutMs: positiveInteger,
      idleConnectionTimeoutMs: { ...positiveInteger, minimum: 1_000 },
    }),
    limits: closed({ maxUploadBytes: positiveInteger }),
    rooms: closed({ defaultVersion: { type: 'string', enum: [...ROOM_VERSIONS.keys()] } }),
    appServices: closed({ registrationFiles: { type: 'array', items: path } }),
    log: closed({ level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] } }),
    replicas: closed(
      {
        ownership: { enum: ['static', 'leases'] },
        leaseTtlMs: { type: 'integer', minimum: 1000 },
        instanceId: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$' },
        stateResolver: replicaShare,
        egress: replicaShare,
        chatSync: replicaShare,
      },
      ['ownership', 'leaseTtlMs', 'stateResolver', 'egress', 'chatSync'],
    ),
    telemetry: closed({ otlpEndpoint: url(['http', 'https']), metricsPort: port, metricsBindAddress: { type: 'string', minLength: 1 } }, []),
    policyServer: closed({ enabled: { type: 'boolean' }, policyFile: path, keyPath: path, reloadIntervalMs: { type: 'integer', minimum: 100 } }, ['enabled', 'reloadIntervalMs']),
    thirdPartyInvites: closed({
      identityServers: { type: 'array', items: closed({ serverName: { type: 'string', pattern: SERVER_NAME_PATTERN }, baseUrl: url(['http', 'https']) }, ['serverName']) },
      requestTimeoutMs: { ...positiveInteger, maximum: 120_000 },
    }),
    keyRing: closed({
      maxCachedServers: positiveInteger,
      fetchesPerAddressBurst: positiveInteger,
      fetchesPerAddressPerMinute: positiveInteger,
      fetchesPerSecond: positiveInteger,
    }),
    memory: closed({ heapGrowingPercent: { type: 'integer', minimum: 0, maximum: 300 } }, ['heapGrowingPercent']),
  },
);

type SchemaNode = { type?: string; properties?: Record<string, SchemaNode>; items?: SchemaNode; enum?: unknown[] };

/** The schema node at a dotted key, or undefined when the key does not exist. */
export function schemaAt(key: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = configSchema as SchemaNode;
  for (const segment of key.split('.')) {
    node = node?.properties?.[segment];
  }
  return node;
}
