// Runs a real Synapse on loopback as a federation peer for the interop suite: one per test file,
// started in beforeAll. Federation (and client) over HTTPS with a test-CA certificate, a plain HTTP
// client listener for test drivers, SQLite, and only the test CA trusted for outbound federation.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { ensureSynapseInstalled, type SynapseInstallation } from './synapse-install';
import { synapseHomeserverConfig, synapseLogConfig } from './synapse-config';
import { issueServerCertificate, sharedTestCa, writeServerCertificate, writeTestCa, type TestCertificateAuthority } from './tls';

export interface StartSynapseOptions {
  /** The CA that issues Synapse's certificate and that Synapse trusts for federation; share it with the fedgate instances under test. */
  ca?: TestCertificateAuthority;
  /** Settings merged over the generated homeserver.yaml (top-level keys replace). */
  extraConfig?: Record<string, unknown>;
  /** Names the log file; defaults to "synapse". */
  name?: string;
  startTimeoutMs?: number;
  /**
   * Synapse's HTTP client for other than federation (identity servers, key validity URLs) trusts only the test CA,
   * through SSL_CERT_FILE (OpenSSL's default verify paths, which that client uses): for a test identity server on TLS.
   */
  trustCaForHttpClient?: boolean;
}

export interface SynapseUser {
  userId: string;
  accessToken: string;
  deviceId: string;
  password: string;
}

export interface SynapseHandle {
  /** `localhost:<tls port>`: peers dial that host and port directly, no .well-known or SRV. */
  serverName: string;
  /** `https://localhost:<port>`, trusted through caCertPath. */
  federationUrl: string;
  /** Plain-HTTP client API for test drivers, `http://127.0.0.1:<port>`. */
  clientUrl: string;
  caCertPath: string;
  dataDir: string;
  logPath: string;
  installation: SynapseInstallation;
  /** Milliseconds the last start or restart took until the client API answered. */
  lastStartMs: number;
  registerUser(localpart: string, password?: string, admin?: boolean): Promise<SynapseUser>;
  /** Stops Synapse and keeps its data; `whileDown` runs during the outage. */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** Stops Synapse and removes its data directory (FEDGATE_KEEP_SYNAPSE_DATA=1 keeps it). */
  stop(): Promise<void>;
  logTail(lines?: number): string;
}

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const logDir = path.join(repoRoot, 'test-results', 'synapse');
const STOP_GRACE_MS = 10_000;

function listenOnce(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function ipv6LoopbackWorks(): Promise<boolean> {
  return listenOnce('::1', 0).then(
    () => true,
    () => false,
  );
}

/** A port free on every given address (the TLS listener binds both loopbacks, "localhost" may resolve to either). */
async function freePort(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenOnce(hosts[0]!, 0);
    const others = await Promise.all(hosts.slice(1).map((host) => listenOnce(host, port).then(() => true, () => false)));
    if (others.every(Boolean)) return port;
  }
  throw new Error(`no port free on all of ${hosts.join(', ')}`);
}

function tcpAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

/** Synapse's signing key file: "ed25519 <key version> <unpadded base64 seed>"; writing it ourselves saves a Python start. */
function signingKeyFile(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  return `ed25519 a_${randomBytes(3).toString('hex')} ${seed.toString('base64').replace(/=+$/, '')}\n`;
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log written)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

// Runs `python -m synapse.app.homeserver ARGS`, but first asks Linux to SIGTERM it when its parent
// dies, so a jest worker that is killed outright leaves no Synapse holding ports. Elsewhere it just runs.
const DIE_WITH_PARENT_LAUNCHER = `
import os, signal, sys, runpy
parent = int(sys.argv.pop(1))
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != parent:
    sys.exit('parent exited before Synapse started')
sys.argv[0] = 'synapse.app.homeserver'
runpy.run_module('synapse.app.homeserver', run_name='__main__', alter_sys=True)
`;

const secret = () => randomBytes(24).toString('hex');

/** Another process took a port between our probe and Synapse's bind; a fresh attempt picks new ones. */
class PortTakenError extends Error {}

export async function startSynapse(options: StartSynapseOptions = {}): Promise<SynapseHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSynapseOnce(options);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt === 3) throw error;
    }
  }
}

async function startSynapseOnce(options: StartSynapseOptions): Promise<SynapseHandle> {
  const installation = await ensureSynapseInstalled();
  const ca = options.ca ?? sharedTestCa();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'fedgate-synapse-'));
  const tlsBindAddresses = (await ipv6LoopbackWorks()) ? ['127.0.0.1', '::1'] : ['127.0.0.1'];
  const tlsPort = await freePort(tlsBindAddresses);
  const httpPort = await freePort(['127.0.0.1']);
  const serverName = `localhost:${tlsPort}`;
  mkdirSync(logDir, { recursive: true });
  const logPath = path.join(logDir, `${options.name ?? 'synapse'}-${tlsPort}.log`);
  const clientUrl = `http://127.0.0.1:${httpPort}`;

  const caFiles = await writeTestCa(ca, dataDir);
  const tlsFiles = await writeServerCertificate(issueServerCertificate(ca), dataDir, 'synapse');
  const signingKeyPath = path.join(dataDir, 'signing.key');
  await writeFile(signingKeyPath, signingKeyFile(), { mode: 0o600 });
  const logConfigPath = path.join(dataDir, 'log.config.yaml');
  await writeFile(logConfigPath, stringify(synapseLogConfig()));
  const registrationSharedSecret = secret();
  const config = {
    ...synapseHomeserverConfig({
      serverName,
      dataDir,
      tlsPort,
      tlsBindAddresses,
      httpPort,
      tlsCertPath: tlsFiles.certPath,
      tlsKeyPath: tlsFiles.keyPath,
      caCertPath: caFiles.certPath,
      signingKeyPath,
      logConfigPath,
      registrationSharedSecret,
      macaroonSecretKey: secret(),
      formSecret: secret(),
    }),
    ...options.extraConfig,
  };
  const configPath = path.join(dataDir, 'homeserver.yaml');
  await writeFile(configPath, stringify(config));

  let child: ChildProcess | undefined;
  const killOnExit = () => child?.kill('SIGKILL');
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;

  const failure = (reason: string) =>
    new (tail(logPath, 40).includes('Address already in use') ? PortTakenError : Error)(
      `Synapse ${serverName} (${installation.python}, ${installation.version}) ${reason}.` +
        `\nconfig: ${configPath}\nlog: ${logPath}\n--- last lines of the log ---\n${tail(logPath, 40)}`,
    );

  async function launch(): Promise<number> {
    const started = Date.now();
    const log = openSync(logPath, 'a');
    const spawned = spawn(installation.python, ['-c', DIE_WITH_PARENT_LAUNCHER, String(process.pid), '-c', configPath], {
      cwd: dataDir,
      stdio: ['ignore', log, log],
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...(options.trustCaForHttpClient ? { SSL_CERT_FILE: caFiles.certPath } : {}) },
    });
    closeSync(log);
    child = spawned;
    process.once('exit', killOnExit);
    const deadline = started + startTimeoutMs;
    while (Date.now() < deadline) {
      if (spawned.exitCode !== null || spawned.signalCode !== null) {
        throw failure(`exited (${spawned.exitCode ?? spawned.signalCode}) before it was ready`);
      }
      const ready = await fetch(`${clientUrl}/_matrix/client/versions`).then(
        (response) => response.ok,
        () => false,
      );
      if (ready && (await tcpAnswers('127.0.0.1', tlsPort))) return Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await halt();
    throw failure(`did not answer ${clientUrl}/_matrix/client/versions within ${startTimeoutMs} ms`);
  }

  async function halt(): Promise<void> {
    const running = child;
    child = undefined;
    process.removeListener('exit', killOnExit);
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGTERM');
    const forceKill = setTimeout(() => running.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(forceKill);
  }

  const handle: SynapseHandle = {
    serverName,
    federationUrl: `https://${serverName}`,
    clientUrl,
    caCertPath: caFiles.certPath,
    dataDir,
    logPath,
    installation,
    lastStartMs: 0,
    registerUser: (localpart, password, admin) => registerSynapseUser(clientUrl, registrationSharedSecret, localpart, password, admin),
    async restart(whileDown) {
      await halt();
      await whileDown?.();
      handle.lastStartMs = await launch();
    },
    async stop() {
      await halt();
      if (process.env.FEDGATE_KEEP_SYNAPSE_DATA !== '1') await rm(dataDir, { recursive: true, force: true });
    },
    logTail: (lines = 40) => tail(logPath, lines),
  };
  try {
    handle.lastStartMs = await launch();
  } catch (error) {
    await halt();
    if (error instanceof PortTakenError) await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return handle;
}

/** Registers through the shared-secret admin API: fetch a nonce, then POST with an HMAC-SHA1 over the fields. */
export async function registerSynapseUser(
  clientUrl: string,
  sharedSecret: string,
  localpart: string,
  password = randomBytes(12).toString('hex'),
  admin = false,
): Promise<SynapseUser> {
  const endpoint = `${clientUrl}/_synapse/admin/v1/register`;
  const nonceResponse = await fetch(endpoint);
  if (!nonceResponse.ok) throw new Error(`GET ${endpoint}: ${nonceResponse.status} ${await nonceResponse.text()}`);
  const { nonce } = (await nonceResponse.json()) as { nonce: string };
  const mac = createHmac('sha1', sharedSecret)
    .update([nonce, localpart, password, admin ? 'admin' : 'notadmin'].join('\0'))
    .digest('hex');
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nonce, username: localpart, password, admin, mac }),
  });
  if (!response.ok) throw new Error(`registering ${localpart}: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { user_id: string; access_token: string; device_id: string };
  return { userId: body.user_id, accessToken: body.access_token, deviceId: body.device_id, password };
}
