// The homeservers a load run drives: fedgate (embedded or distributed) and Synapse, each with a TestBridge as its
// application service, so "delivered" means pushed to the application service on both.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FedgateProcess, startFedgate, startSynapse, TestBridge, type FedgateInstance, type SynapseHandle, type TestCertificateAuthority } from '@fedgate/testing';
import { childProcessesMatching, findProcessByCommandLine } from './process-meter';

/** `fedgate-distributed-2sr`: the distributed shape with a second state-resolver process (partitions split by leases). */
export type TargetKind = 'fedgate-embedded' | 'fedgate-distributed' | 'fedgate-distributed-2sr' | 'synapse';

export interface Target {
  kind: TargetKind;
  /** What runs, for the report (`fedgate 0.1.0 embedded`, `Synapse 1.x (SQLite)`). */
  version: string;
  serverName: string;
  bridge: TestBridge;
  /** The target's processes, for CPU and RSS. */
  pids(): number[];
  /** Distributed: NATS and the MongoDB-wire server (started by this run, shared by its targets), whose CPU is reported apart. */
  backingPids?(): number[];
  /** A public room (version 10) created by a virtual user of the bridge; the simulator joins it. */
  createRoom(): Promise<string>;
  /** A message from the room creator (a local event the target must send to every server in the room). */
  sendMessage(roomId: string, body: string): Promise<string>;
  /** The room creator joins a room hosted by `via` over federation (`traceparent`: the trace the target's spans join). */
  joinRemoteRoom(roomId: string, via: string, traceparent?: string): Promise<void>;
  /** Whether the target exports its spans (`--trace`): only then is a join's timeline printed. */
  traced: boolean;
  /**
   * The gateway's event-loop delay since the previous call (its Prometheus default metrics, reset by each scrape):
   * how long a listener (a `/send`, `/version`) could wait behind synchronous work. fedgate embedded only.
   */
  eventLoopDelay?(): Promise<{ p99Ms?: number; maxMs?: number }>;
  /** How many members the room creator's client sees joined (`/joined_members`). */
  joinedMemberCount(roomId: string): Promise<number>;
  stop(): Promise<void>;
}

const roomCreator = 'loadchat_host';

async function sendMessageAs(bridge: TestBridge, userId: string, roomId: string, body: string): Promise<string> {
  const sent = await bridge.asUser(userId).sendTextMessage(roomId, body);
  return sent.event_id;
}

/**
 * A join of a big remote room takes long: called directly (as the bridge's AS identity) so that neither the SDK's
 * 15 s default applies nor its longer timeout's timer keeps the process alive afterwards.
 */
async function joinRemoteRoomAs(bridge: TestBridge, clientUrl: string, userId: string, roomId: string, via: string, traceparent?: string): Promise<void> {
  const query = new URLSearchParams({ server_name: via, user_id: userId });
  const res = await fetch(`${clientUrl}/_matrix/client/v3/join/${encodeURIComponent(roomId)}?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bridge.registration.as_token}`, 'content-type': 'application/json', ...(traceparent ? { traceparent } : {}) },
    body: '{}',
    signal: AbortSignal.timeout(600_000),
  });
  if (res.status !== 200) throw new Error(`/join answered ${res.status}: ${await res.text()}`);
}

async function joinedMemberCountAs(bridge: TestBridge, clientUrl: string, userId: string, roomId: string): Promise<number> {
  const res = await fetch(`${clientUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members?${new URLSearchParams({ user_id: userId })}`, {
    headers: { authorization: `Bearer ${bridge.registration.as_token}` },
    signal: AbortSignal.timeout(600_000),
  });
  if (res.status !== 200) throw new Error(`/joined_members answered ${res.status}: ${await res.text()}`);
  return Object.keys(((await res.json()) as { joined?: Record<string, unknown> }).joined ?? {}).length;
}

/** prom-client's `nodejs_eventloop_lag_{p99,max}_seconds` from a listener's /metrics (each scrape starts a new window). */
async function eventLoopDelayOf(clientServerUrl: string): Promise<{ p99Ms?: number; maxMs?: number }> {
  const res = await fetch(`${clientServerUrl}/metrics`);
  const text = await res.text();
  const seconds = (name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
    const value = line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Number.NaN;
    return Number.isFinite(value) ? value * 1000 : undefined;
  };
  return { p99Ms: seconds('nodejs_eventloop_lag_p99_seconds'), maxMs: seconds('nodejs_eventloop_lag_max_seconds') };
}

async function createRoomAs(bridge: TestBridge, userId: string): Promise<string> {
  const created = await bridge.asUser(userId).createRoom({ preset: 'public_chat' as never, room_version: '10' } as never);
  return created.room_id;
}

/** Lease TTL of the distributed targets: both run with leases, so one and two state-resolvers differ only in that. */
const LEASE_TTL_MS = 3_000;

export interface TargetOptions {
  /** OTLP/HTTP endpoint the fedgate processes export their spans to (`--trace`). */
  otlpEndpoint?: string;
}

/**
 * The per-origin federation limits of a load run, the same as the Synapse it is compared with runs under
 * (test/support lifts `rc_federation`). With the defaults (Synapse's: past 10 requests from one origin in a second,
 * each waits 500 ms) the steady workload's 9 transactions a second crossed 10 now and then and those /send waited
 * the 500 ms: the ~541 ms `/send` p99 of issue 19, while /version, not limited, stayed fast.
 */
export const LOAD_FEDERATION_RATE_LIMIT = { windowMs: 1_000, sleepLimit: 100_000, sleepDelayMs: 0, rejectLimit: 100_000, concurrent: 1_000 };

/** The configuration a load run's fedgate starts with (over startFedgate's own). */
export function fedgateLoadConfig(shape: 'embedded' | 'distributed', options: TargetOptions): Record<string, unknown> {
  return {
    ...(options.otlpEndpoint ? { telemetry: { otlpEndpoint: options.otlpEndpoint } } : {}),
    federation: { rateLimit: LOAD_FEDERATION_RATE_LIMIT },
    // Every simulated server connects from 127.0.0.1: the per-address key-fetch budget, meant for one peer, would
    // refuse the fan-out's joins after the first few dozen (401 for want of the joining server's key).
    keyRing: { fetchesPerAddressBurst: 5_000, fetchesPerAddressPerMinute: 60_000, fetchesPerSecond: 1_000 },
    ...(shape === 'distributed' ? { replicas: { ownership: 'leases', leaseTtlMs: LEASE_TTL_MS } } : {}),
  };
}

async function fedgateTarget(kind: Exclude<TargetKind, 'synapse'>, ca: TestCertificateAuthority, options: TargetOptions): Promise<Target> {
  const shape = kind === 'fedgate-embedded' ? 'embedded' : 'distributed';
  const config = fedgateLoadConfig(shape, options);
  const instance: FedgateInstance = await startFedgate({ shape, ca, name: `load${shape[0]}`, bridgePrefix: 'loadchat', logLevel: 'warn', config });
  const extra: FedgateProcess[] = [];
  if (kind === 'fedgate-distributed-2sr') {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('FEDGATE_') || name.startsWith('FEDGATE_TEST_')) env[name] = value;
    env.FEDGATE_CONFIG = instance.configPath;
    const second = new FedgateProcess('state-resolver', env, path.join(instance.dataDir, 'state-resolver-2.log'));
    await second.start();
    extra.push(second);
    // Until the first replica's leases on the partitions the second takes have expired and changed hands.
    await new Promise((resolve) => setTimeout(resolve, 3 * LEASE_TTL_MS));
  }
  const bridge = instance.bridge!;
  const host = await bridge.registerVirtualUser(roomCreator);
  const { version } = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return {
    kind,
    version: `fedgate ${version} ${shape}${kind === 'fedgate-distributed-2sr' ? ', 2 state-resolvers' : ''}`,
    serverName: instance.serverName,
    bridge,
    pids: () => [...instance.processes, ...extra].map((p) => p.pid).filter((pid): pid is number => pid !== undefined),
    ...(shape === 'distributed' ? { backingPids: () => childProcessesMatching(['nats-server', 'ferretdb']) } : {}),
    createRoom: () => createRoomAs(bridge, host),
    sendMessage: (roomId, body) => sendMessageAs(bridge, host, roomId, body),
    joinRemoteRoom: (roomId, via, traceparent) => joinRemoteRoomAs(bridge, instance.clientServerUrl, host, roomId, via, traceparent),
    traced: options.otlpEndpoint !== undefined,
    joinedMemberCount: (roomId) => joinedMemberCountAs(bridge, instance.clientServerUrl, host, roomId),
    ...(shape === 'embedded' ? { eventLoopDelay: () => eventLoopDelayOf(instance.clientServerUrl) } : {}),
    stop: async () => {
      await Promise.all(extra.map((p) => p.close()));
      await instance.destroy();
    },
  };
}

async function synapseTarget(ca: TestCertificateAuthority): Promise<Target> {
  // Synapse reads the registration at start: the bridge starts first and is pointed at Synapse afterwards.
  const bridge = await TestBridge.start({ prefix: 'loadchat', id: 'bridge-load-synapse' });
  let synapse: SynapseHandle;
  try {
    synapse = await startSynapse({ ca, name: 'load', extraConfig: { app_service_config_files: [bridge.registrationPath] } });
  } catch (err) {
    await bridge.stop();
    throw err;
  }
  bridge.connect({ homeserverUrl: synapse.clientUrl, serverName: synapse.serverName });
  const host = await bridge.registerVirtualUser(roomCreator);
  const configPath = path.join(synapse.dataDir, 'homeserver.yaml');
  let pid: number | undefined;
  return {
    kind: 'synapse',
    version: `Synapse ${synapse.installation.version} (SQLite)`,
    serverName: synapse.serverName,
    bridge,
    pids: () => {
      pid ??= findProcessByCommandLine(configPath);
      return pid === undefined ? [] : [pid];
    },
    createRoom: () => createRoomAs(bridge, host),
    sendMessage: (roomId, body) => sendMessageAs(bridge, host, roomId, body),
    joinRemoteRoom: (roomId, via) => joinRemoteRoomAs(bridge, synapse.clientUrl, host, roomId, via),
    traced: false,
    joinedMemberCount: (roomId) => joinedMemberCountAs(bridge, synapse.clientUrl, host, roomId),
    stop: async () => {
      await bridge.stop();
      await synapse.stop();
    },
  };
}

export function startTarget(kind: TargetKind, ca: TestCertificateAuthority, options: TargetOptions = {}): Promise<Target> {
  return kind === 'synapse' ? synapseTarget(ca) : fedgateTarget(kind, ca, options);
}
