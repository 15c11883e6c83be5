// A whole fedgate for the end-to-end suites, in either deployment shape, with a TestBridge as its chat
// platform. Every instance gets a certificate from the shared test CA, trusts only that CA, may dial
// loopback (and nothing else non-public), and is named `localhost:<federation port>`.
//   embedded:    the built gateway, one process, SQLite in the data dir.
//   distributed: the four service processes against the shared NATS and MongoDB-wire database from
//                global setup, with a bus prefix and database of its own.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { TestBridge } from '../bridge';
import { findFreePort } from '../process';
import { TcpBalancer } from '../tcp-balancer';
import { issueServerCertificate, writeServerCertificate, writeTestCa, type TestCertificateAuthority } from '../tls';
import { startTogether } from '../start-together';
import { withDeployedRuntime } from './deployed-runtime';
import { FedgateProcess, repositoryRoot } from './fedgate-process';

export type FedgateShape = 'embedded' | 'distributed';

/** The distributed apps, in start order: consumers before the listeners that feed them. */
export const DISTRIBUTED_APPS = ['state-resolver', 'federation-egress', 'chat-sync', 'federation-ingress'] as const;

export interface StartFedgateOptions {
  shape: FedgateShape;
  ca: TestCertificateAuthority;
  /** Short name for logs, data dir, bus prefix and database: `a`, `b`, … */
  name: string;
  /** Namespace prefix of the bridge's virtual users; default `<name>chat`. Pass false for no bridge. */
  bridgePrefix?: string | false;
  /** The bridge registers with MSC3202 (device lists and key counts in its transactions). */
  bridgeMsc3202?: boolean;
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** Extra config settings merged over the generated ones (e.g. egress backoff for outage tests). */
  config?: Record<string, unknown>;
  /**
   * Distributed shape: this many federation-ingress processes, each on a port of its own, behind a TCP balancer
   * (round robin per connection) on the server name's port, as operators run several ingresses. Default 1.
   */
  ingressReplicas?: number;
}

export interface FedgateInstance {
  readonly shape: FedgateShape;
  readonly name: string;
  /** `localhost:<port>`: the explicit port makes peers skip .well-known and SRV. */
  readonly serverName: string;
  readonly federationUrl: string;
  readonly clientServerUrl: string;
  readonly dataDir: string;
  readonly configPath: string;
  readonly registrationPath: string | undefined;
  /** The chat platform, connected to this fedgate's client-server listener. */
  readonly bridge: TestBridge | undefined;
  readonly processes: readonly FedgateProcess[];
  /** With `ingressReplicas` > 1: the balancer in front of the ingress processes. */
  readonly balancer: TcpBalancer | undefined;
  /** Distributed shape: the instance's own database on the shared MongoDB-wire server. */
  readonly mongo: { url: string; database: string } | undefined;
  /**
   * Distributed shape: starts one more replica of a service (same config; its own instance ID, from its pid), for
   * scaling tests. It is not in `processes`: stop it yourself; destroy() stops it too.
   */
  addReplica(app: (typeof DISTRIBUTED_APPS)[number], env?: NodeJS.ProcessEnv): Promise<FedgateProcess>;
  /** Stops every process (SIGTERM, or SIGKILL for a crash); data stays. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the processes again on the same ports, data and keys. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Everything the processes printed. */
  logs(): string;
  /** Stops processes and bridge and deletes the data dir (and the instance's database). */
  destroy(): Promise<void>;
}

let built: Promise<void> | undefined;

/** Compiles dist/ once per test process (incremental, so cheap when nothing changed). */
export function ensureFedgateBuilt(): Promise<void> {
  built ??= new Promise<void>((resolve, reject) => {
    const result = spawnSync(process.execPath, [path.join(repositoryRoot, 'tools', 'build.mjs')], { cwd: repositoryRoot, encoding: 'utf8' });
    if (result.status === 0) resolve();
    else reject(new Error(`build failed:\n${result.stdout}\n${result.stderr}`));
  });
  return built;
}

/** The environment for a child: ours without FEDGATE_* settings, plus the image's runtime settings and the config file. */
function childEnvironment(configPath: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('FEDGATE_') || name.startsWith('FEDGATE_TEST_')) env[name] = value;
  }
  env.FEDGATE_CONFIG = configPath;
  return withDeployedRuntime(env);
}

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the distributed shape needs the e2e global setup (jest --selectProjects=e2e)`);
  return value;
}

// Ports are found free, then bound by the child a moment later: another process on the machine may take
// one in between. Such a start is tried again on other ports rather than failing the suite.
export async function startFedgate(options: StartFedgateOptions): Promise<FedgateInstance> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startFedgateOnce(options);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
    }
  }
}

/** Starts two gateways side by side (the usual pair of a federation test); see startTogether for a failed start. */
export async function startFedgatePair(a: StartFedgateOptions, b: StartFedgateOptions): Promise<[FedgateInstance, FedgateInstance]> {
  const [first, second] = await startTogether([startFedgate(a), startFedgate(b)] as const);
  return [first, second];
}

async function startFedgateOnce(options: StartFedgateOptions): Promise<FedgateInstance> {
  await ensureFedgateBuilt();
  const dataDir = await mkdtemp(path.join(tmpdir(), `fedgate-e2e-${options.name}-`));
  const federationPort = await findFreePort();
  const clientServerPort = await findFreePort();
  const serverName = `localhost:${federationPort}`;
  const unique = `${options.name}_${randomBytes(4).toString('hex')}`;

  const tlsDir = path.join(dataDir, 'tls');
  const ca = await writeTestCa(options.ca, tlsDir);
  const certificate = await writeServerCertificate(issueServerCertificate(options.ca), tlsDir, 'server');

  const ingressReplicas = options.shape === 'distributed' ? (options.ingressReplicas ?? 1) : 1;
  // Behind a balancer the server name's port is the balancer's; each ingress listens on one of its own.
  const ingressPorts = ingressReplicas > 1 ? await Promise.all(Array.from({ length: ingressReplicas }, () => findFreePort())) : [federationPort];
  const clientServerUrl = `http://127.0.0.1:${clientServerPort}`;
  const bridge =
    options.bridgePrefix === false
      ? undefined
      : await TestBridge.start({ serverName, homeserverUrl: clientServerUrl, prefix: options.bridgePrefix ?? `${options.name}chat`, id: `bridge-${options.name}`, msc3202: options.bridgeMsc3202 });

  const config: Record<string, unknown> = {
    serverName,
    mode: options.shape,
    dataDir,
    clientServer: { enabled: true, bindAddress: '127.0.0.1', port: clientServerPort },
    tls: { cert: certificate.certPath, key: certificate.keyPath, ca: [ca.certPath] },
    appServices: { registrationFiles: bridge ? [bridge.registrationPath] : [] },
    bus: { prefix: `e2e_${unique}` },
    log: { level: options.logLevel ?? 'info' },
    egress: { backoff: { initialMs: 200, multiplier: 2, maxMs: 2_000, jitter: 0.1 }, requestTimeoutMs: 10_000 },
    ...(options.shape === 'distributed'
      ? { nats: { url: requiredEnv('FEDGATE_TEST_NATS_URL') }, mongo: { url: requiredEnv('FEDGATE_TEST_MONGO_URL'), database: `fedgate_${unique}` } }
      : {}),
    ...options.config,
    // A caller's federation settings (its rate limits) go over the generated listener's, not instead of them.
    // `::` takes IPv4 and IPv6 on loopback alike: peers dial `localhost`, which may resolve to either.
    federation: {
      bindAddress: '::',
      port: ingressPorts[0],
      allowPrivateAddresses: false,
      addressAllowlist: ['127.0.0.0/8', '::1/128'],
      ...(options.config?.federation as Record<string, unknown> | undefined),
    },
  };
  const configPath = path.join(dataDir, 'fedgate.yaml');
  await writeFile(configPath, stringify(config));

  const env = childEnvironment(configPath);
  const apps = options.shape === 'embedded' ? ['gateway'] : [...DISTRIBUTED_APPS];
  const processes = apps.map((app) => new FedgateProcess(app, env, path.join(dataDir, `${app}.log`)));
  for (const [i, port] of ingressPorts.entries()) {
    if (i > 0) processes.push(new FedgateProcess('federation-ingress', { ...env, FEDGATE_FEDERATION__PORT: String(port) }, path.join(dataDir, `federation-ingress-${i + 1}.log`)));
  }
  const balancer = ingressReplicas > 1 ? await TcpBalancer.start(federationPort, ingressPorts.map((port) => ({ host: '127.0.0.1', port }))) : undefined;
  const replicas: FedgateProcess[] = [];

  const start = async () => {
    // One after the other: they share first-start material (signing key) and two cores.
    for (const child of processes) await child.start();
  };
  const stop = async (signal?: NodeJS.Signals) => {
    for (const child of [...processes].reverse()) await child.stop(signal);
  };
  const instance: FedgateInstance = {
    shape: options.shape,
    name: options.name,
    serverName,
    federationUrl: `https://localhost:${federationPort}`,
    clientServerUrl,
    dataDir,
    configPath,
    registrationPath: bridge?.registrationPath,
    bridge,
    processes,
    balancer,
    mongo: options.shape === 'distributed' ? (config.mongo as { url: string; database: string }) : undefined,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    addReplica: async (app, overrides = {}) => {
      if (options.shape !== 'distributed') throw new Error('addReplica: only the distributed shape has replicas');
      // A listener of its own (the first replica's port is taken); the harness talks to the first one.
      const listener = app === 'chat-sync' ? { FEDGATE_CLIENT_SERVER__PORT: String(await findFreePort()) } : app === 'federation-ingress' ? { FEDGATE_FEDERATION__PORT: String(await findFreePort()) } : {};
      const replica = new FedgateProcess(app, { ...env, ...listener, ...overrides }, path.join(dataDir, `${app}-${replicas.length + 2}.log`));
      replicas.push(replica);
      await replica.start();
      return replica;
    },
    logs: () => [...processes, ...replicas].map((child) => `----- ${options.name} ${child.app}\n${child.logs()}`).join('\n'),
    destroy: async () => {
      await Promise.all([...processes, ...replicas].map((child) => child.close()));
      await balancer?.stop();
      await bridge?.stop();
      if (instance.mongo) await dropDatabase(instance.mongo.url, instance.mongo.database);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (err) {
    const logs = instance.logs();
    await instance.destroy().catch(() => undefined);
    throw new Error(`fedgate ${options.name} (${options.shape}) did not start: ${(err as Error).message}\n${logs}`);
  }
  return instance;
}

async function dropDatabase(url: string, database: string): Promise<void> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(url);
  try {
    await client.db(database).dropDatabase();
  } catch {
    // Best effort: a test database left behind is harmless.
  } finally {
    await client.close();
  }
}
