// `npm start` on a bare machine: the built embedded gateway creates its data dir, signing key and
// self-signed certificate, serves the federation discovery endpoints over HTTPS with Matrix errors,
// and reuses the same key and certificate after a restart.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { findFreePort } from '@fedgate/testing';

const root = path.resolve(__dirname, '..', '..');
const gatewayMain = path.join(root, 'dist', 'apps', 'gateway', 'src', 'main.js');
const READY = /fedgate gateway ready: .*federation (https:\/\/\S+), client-server (http:\/\/\S+)/;

interface ServiceProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function startGatewayProcess(env: NodeJS.ProcessEnv, cwd: string): ServiceProcess {
  const child = spawn(process.execPath, [gatewayMain], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function stopProcess(service: ServiceProcess): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), 10_000);
  await service.exited;
  clearTimeout(timer);
}

/** Resolves with the ready line's match once printed; rejects with the output if the process exits or time runs out. */
async function waitForReadyLine(service: ServiceProcess, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = service.output().match(READY);
    if (match) return match;
    if (service.child.exitCode !== null) throw new Error(`gateway exited (${service.child.exitCode}) before it was ready:\n${service.output()}`);
    if (Date.now() > deadline) throw new Error(`gateway not ready after ${timeoutMs} ms:\n${service.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface StartedGateway {
  process: ServiceProcess;
  federationPort: number;
  clientServerUrl: string;
}

describe('embedded gateway start', () => {
  let dataDir: string;
  let federationPort: number;
  let gateway: StartedGateway | undefined;

  beforeAll(async () => {
    const build = spawnSync(process.execPath, [path.join(root, 'tools', 'build.mjs')], { cwd: root, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed:\n${build.stderr}`);
    dataDir = await mkdtemp(path.join(tmpdir(), 'fedgate-gateway-'));
    federationPort = await findFreePort();
  }, 60_000);

  afterEach(async () => {
    if (gateway) await stopProcess(gateway.process);
    gateway = undefined;
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  async function startGateway(): Promise<StartedGateway> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FEDGATE_DATA_DIR: dataDir,
      FEDGATE_LISTEN_ADDRESS: '127.0.0.1',
      FEDGATE_LISTEN_PORT: String(federationPort),
      FEDGATE_CLIENT_LISTEN_PORT: '0',
      FEDGATE_FEDERATION__MAX_REQUEST_BYTES: String(64 * 1024),
      FEDGATE_LOG_LEVEL: 'warn',
    };
    delete env.FEDGATE_CONFIG;
    const child = startGatewayProcess(env, dataDir);
    gateway = { process: child, federationPort, clientServerUrl: '' };
    const [, federationUrl, clientServerUrl] = await waitForReadyLine(child, 60_000);
    expect(federationUrl).toBe(`https://127.0.0.1:${federationPort}`);
    return (gateway = { process: child, federationPort, clientServerUrl: clientServerUrl! });
  }

  async function call(method: 'GET' | 'PUT', urlPath: string, body?: string | Buffer, headers: Record<string, string> = {}) {
    const ca = await readFile(path.join(dataDir, 'tls', 'server.crt'), 'utf8');
    const dispatcher = new Agent({ connect: { ca, servername: 'localhost' } });
    try {
      const res = await request(`https://127.0.0.1:${federationPort}${urlPath}`, { method, body, headers, dispatcher });
      return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
    } finally {
      await dispatcher.close();
    }
  }

  const signingKeyFile = () => readFile(path.join(dataDir, 'signing.key'), 'utf8');
  const certificateFile = () => readFile(path.join(dataDir, 'tls', 'server.crt'), 'utf8');

  it('serves discovery and Matrix errors over HTTPS with a certificate it generated', async () => {
    await startGateway();

    const version = await call('GET', '/_matrix/federation/v1/version');
    expect(version.status).toBe(200);
    expect(version.json).toEqual({ server: { name: 'fedgate', version: expect.any(String) } });

    const wellKnown = await call('GET', '/.well-known/matrix/server');
    expect(wellKnown).toEqual({ status: 200, json: { 'm.server': 'localhost:8448' } });

    const unknown = await call('GET', '/_matrix/federation/v1/no-such-endpoint');
    expect(unknown.status).toBe(404);
    expect(unknown.json.errcode).toBe('M_UNRECOGNIZED');

    const oversized = await call('PUT', '/_matrix/federation/v1/send/txn1', JSON.stringify({ pdus: [], pad: 'x'.repeat(100 * 1024) }), {
      'content-type': 'application/json',
    });
    expect(oversized.status).toBe(413);
    expect(oversized.json.errcode).toBe('M_TOO_LARGE');

    const malformed = await call('PUT', '/_matrix/federation/v1/send/txn2', '{"pdus": [', { 'content-type': 'application/json' });
    expect(malformed.status).toBe(400);
    expect(malformed.json.errcode).toBe('M_NOT_JSON');

    const clientServer = await fetch(`${gateway!.clientServerUrl}/_matrix/client/v3/nothing`);
    expect(clientServer.status).toBe(404);
    expect(((await clientServer.json()) as { errcode: string }).errcode).toBe('M_UNRECOGNIZED');
  }, 90_000);

  it('serves Prometheus metrics on the internal listeners only, with bus consumer gauges', async () => {
    const metricsPort = await findFreePort();
    process.env.FEDGATE_METRICS_PORT = String(metricsPort);
    try {
      await startGateway();
    } finally {
      delete process.env.FEDGATE_METRICS_PORT;
    }
    await call('GET', '/_matrix/federation/v1/version');
    const fromClientListener = await fetch(`${gateway!.clientServerUrl}/metrics`);
    expect(fromClientListener.status).toBe(200);
    const exposition = await fromClientListener.text();
    expect(exposition).toMatch(/fedgate_bus_consumer_lag\{[^}]*consumer="fedgate-state-resolver-pdu-0"[^}]*\} 0/);
    expect(exposition).toMatch(/fedgate_http_request_duration_seconds_count\{[^}]*listener="federation"[^}]*route="\/_matrix\/federation\/v1\/version"/);
    expect(exposition).toContain('service="gateway"');

    const dedicated = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(dedicated.status).toBe(200);
    expect(await dedicated.text()).toContain('fedgate_bus_consumer_ack_pending');
    // Issue 12: the probes' endpoints on the same port; a started gateway with its bus and store is ready.
    expect((await fetch(`http://127.0.0.1:${metricsPort}/livez`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/startupz`)).status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { bus: 'ok', store: 'ok' } });

    const fromFederation = await call('GET', '/metrics');
    expect(fromFederation.status).toBe(404);
    expect(fromFederation.json.errcode).toBe('M_UNRECOGNIZED');
  }, 90_000);

  it('reuses the signing key and certificate after a restart', async () => {
    const keyBefore = await signingKeyFile();
    const certBefore = await certificateFile();
    expect(keyBefore).toMatch(/^ed25519 a_\w+ \S{43}\n$/);

    await startGateway();
    expect(gateway!.process.output()).toContain(`signing key ed25519:${keyBefore.split(' ')[1]}`);
    expect(await signingKeyFile()).toBe(keyBefore);
    expect(await certificateFile()).toBe(certBefore);
    expect((await call('GET', '/_matrix/federation/v1/version')).status).toBe(200);

    await stopProcess(gateway!.process);
    expect(await gateway!.process.exited).toBe(0); // SIGTERM is a clean shutdown
  }, 90_000);

  it('refuses a second gateway on the same data directory while the first runs; after the first is killed (SIGKILL) a restart is not held up', async () => {
    await startGateway();
    const secondPort = await findFreePort();
    const second = startGatewayProcess(
      { ...process.env, FEDGATE_DATA_DIR: dataDir, FEDGATE_LISTEN_ADDRESS: '127.0.0.1', FEDGATE_LISTEN_PORT: String(secondPort), FEDGATE_CLIENT_LISTEN_PORT: '0', FEDGATE_LOG_LEVEL: 'warn' },
      dataDir,
    );
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(/is in use by another fedgate process \(.+\/\d+\/.+, lease until /);
    expect((await call('GET', '/_matrix/federation/v1/version')).status).toBe(200); // the first one is untouched

    gateway!.process.child.kill('SIGKILL');
    await gateway!.process.exited;
    gateway = undefined;
    await startGateway(); // within the lease's 30 s: the dead holder's pid is gone, so it is taken over
    expect((await call('GET', '/_matrix/federation/v1/version')).status).toBe(200);
  }, 120_000);

  it('exits with a message naming the bad setting', async () => {
    const child = startGatewayProcess({ ...process.env, FEDGATE_DATA_DIR: dataDir, FEDGATE_LISTEN_PORT: 'not-a-port' }, dataDir);
    expect(await child.exited).toBe(1);
    expect(child.output()).toContain('FEDGATE_LISTEN_PORT="not-a-port": federation.port must be an integer');
  }, 30_000);
});
