// Issue 12, probes: there were no health endpoints, so the chart could only probe a TCP port (and nothing at
// all for state-resolver and egress). /readyz must say "not ready" while the bus or the store is down or this
// replica has not joined its stage, with the reason, and recover by itself; /livez must not follow outages.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busOptionsFor, busTopology, JetStreamBus } from '@fedgate/bus';
import { loadConfig } from '@fedgate/config';
import { openSqliteStore, type Store } from '@fedgate/store';
import { createMetricsRegistry, markServiceStarted, serveMetrics, type MetricsServer } from '@fedgate/telemetry';
import { LocalNatsServer } from '@fedgate/testing';
import { registerPlatformReadiness } from './build-platform';
import { elasticOwnershipFor } from './elastic-ownership';
import { PartitionOwnership } from './partition-ownership';

jest.setTimeout(60_000);

describe('health endpoints beside /metrics', () => {
  let dir: string;
  let server: MetricsServer;
  let store: Store;
  const removals: Array<() => void> = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-ready-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    server = await serveMetrics(createMetricsRegistry('readiness-test', false), 0);
  });
  afterEach(() => {
    removals.splice(0).forEach((remove) => remove());
    markServiceStarted(false);
  });
  afterAll(async () => {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (probe: string) => {
    const response = await fetch(`http://127.0.0.1:${server.port}${probe}`);
    return { status: response.status, body: (await response.json()) as { ready?: boolean; checks?: Record<string, string> } };
  };
  const eventually = async (probe: string, status: number) => {
    let last = await get(probe);
    for (let i = 0; i < 300 && last.status !== status; i++) {
      await new Promise((r) => setTimeout(r, 100));
      last = await get(probe);
    }
    return last;
  };

  it('starting: /startupz and /readyz answer 503 until the service has started; /livez answers 200 at once', async () => {
    expect((await get('/livez')).status).toBe(200);
    expect(await get('/startupz')).toMatchObject({ status: 503, body: { status: 'starting' } });
    expect((await get('/readyz')).status).toBe(503);
    markServiceStarted(true);
    expect((await get('/startupz')).status).toBe(200);
    expect(await get('/readyz')).toMatchObject({ status: 200, body: { ready: true } });
  });

  it('NATS down: /readyz is 503 naming the bus while /livez stays 200, and 200 again once NATS is back', async () => {
    const nats = await LocalNatsServer.start();
    const topology = busTopology({ prefix: `ready${process.pid}` });
    const bus = await JetStreamBus.connect({ servers: nats.url }, busOptionsFor(topology));
    try {
      removals.push(registerPlatformReadiness(store, bus));
      markServiceStarted(true);
      expect(await get('/readyz')).toMatchObject({ status: 200, body: { checks: { bus: 'ok', store: 'ok' } } });
      const natsProcess = (nats as unknown as { process: { stop(signal?: string): Promise<void> } }).process;
      await natsProcess.stop('SIGKILL');
      const down = await eventually('/readyz', 503);
      expect(down.status).toBe(503);
      expect(down.body.checks?.bus).not.toBe('ok');
      expect(down.body.checks?.store).toBe('ok');
      expect((await get('/livez')).status).toBe(200);
      await (nats as unknown as { boot(): Promise<void> }).boot();
      expect(await eventually('/readyz', 200)).toMatchObject({ status: 200, body: { checks: { bus: 'ok' } } });
    } finally {
      await bus.close();
      await nats.stop();
    }
  });

  it('store down: /readyz is 503 with the store error, credentials left out', async () => {
    const failing = { leases: { live: async () => Promise.reject(new Error('connection to mongodb://fedgate:s3cret@mongo:27017 refused')) } } as unknown as Store;
    removals.push(registerPlatformReadiness(failing, {} as never));
    markServiceStarted(true);
    // The reason is served unauthenticated: the URL's credentials are not.
    expect(await get('/readyz')).toMatchObject({ status: 503, body: { ready: false, checks: { store: 'connection to mongodb://[REDACTED]@mongo:27017 refused', bus: 'ok' } } });
  });

  it('elastic ownership: not ready until this replica holds its membership lease, ready once it joined, not ready when it left', async () => {
    const config = loadConfig({ env: {}, argv: [], cwd: dir, overrides: { dataDir: dir, replicas: { ownership: 'leases', leaseTtlMs: 3_000 } } as never });
    const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const elastic = elasticOwnershipFor(config, store, 'federation-egress', logger)!;
    markServiceStarted(true);
    const before = await get('/readyz');
    expect(before.status).toBe(503);
    expect(before.body.checks?.['ownership federation-egress']).toMatch(/no live membership lease/);
    const ownership = new PartitionOwnership({ ...elastic, scope: `${elastic.scope}/destinations`, partitions: 4, onAcquire: async () => undefined, onRelease: async () => undefined });
    await ownership.start();
    expect(await get('/readyz')).toMatchObject({ status: 200, body: { checks: { 'ownership federation-egress': 'ok' } } });
    await ownership.stop();
    expect((await get('/readyz')).status).toBe(503);
  });
});
