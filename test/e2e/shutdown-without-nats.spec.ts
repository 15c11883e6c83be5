// Issue 12, shutdown while NATS is gone: distributed processes ignored SIGTERM for hours when NATS was
// unreachable (closing waited on a connection that kept reconnecting). Every shutdown step is bounded now:
// with NATS stopped, each service exits by itself within its grace period, and one started while NATS is
// away (stuck before it is ready) exits on SIGTERM too. The instance gets a NATS server of its own, so
// stopping it disturbs no other suite.
import { MongoClient } from 'mongodb';
import { createTestCa, LocalNatsServer, startFedgate, type FedgateInstance, type ProcessExit } from '@fedgate/testing';

/** What an orchestrator gives a process between SIGTERM and SIGKILL (Kubernetes' default is 30 s). */
const GRACE_MS = 20_000;

jest.setTimeout(240_000);

describe('shutdown while NATS is gone (issue 12)', () => {
  let nats: LocalNatsServer;
  let instance: FedgateInstance;

  beforeAll(async () => {
    nats = await LocalNatsServer.start();
    instance = await startFedgate({
      shape: 'distributed',
      ca: createTestCa(),
      name: 'sigterm',
      bridgePrefix: false,
      config: { nats: { url: nats.url }, replicas: { ownership: 'leases', leaseTtlMs: 3_000 } },
    });
  }, 180_000);

  /** Partition leases still held in the instance's store (a process that stopped cleanly gave its own back). */
  async function livePartitionLeases(): Promise<string[]> {
    const client = new MongoClient(instance.mongo!.url);
    try {
      const leases = await client.db(instance.mongo!.database).collection('leases').find({ expiresTs: { $gt: Date.now() } }).toArray();
      return leases.map((l) => String(l._id)).filter((name) => name.includes('/partitions/'));
    } finally {
      await client.close();
    }
  }

  afterAll(async () => {
    await instance?.destroy();
    await nats?.stop();
  });

  it('every distributed service exits by itself within its grace on SIGTERM while NATS answers nothing (frozen)', async () => {
    nats.freeze();
    const exits: Record<string, ProcessExit | undefined> = {};
    try {
      for (const child of [...instance.processes].reverse()) exits[child.app] = await child.stop('SIGTERM', GRACE_MS);
    } finally {
      nats.thaw();
    }
    console.log(`shutdown with NATS frozen: ${Object.entries(exits).map(([app, e]) => `${app} ${e?.ms} ms (code ${e?.code}, signal ${e?.signal})`).join(', ')}`);
    // A clean stop (0), not the shutdown's last-resort timer (1): every step was bounded and the next ones ran,
    // so the partitions were handed back and the other replicas need not wait for the leases to expire.
    for (const [app, exit] of Object.entries(exits)) expect({ app, killedAfterGrace: exit?.killedAfterGrace, code: exit?.code }).toEqual({ app, killedAfterGrace: false, code: 0 });
    expect(await livePartitionLeases()).toEqual([]);
    await instance.start();
  });

  it('every distributed service exits by itself within its grace on SIGTERM while NATS is stopped, also one still starting', async () => {
    await nats.down();
    const exits: Record<string, ProcessExit | undefined> = {};
    for (const child of [...instance.processes].reverse()) exits[child.app] = await child.stop('SIGTERM', GRACE_MS);
    for (const [app, exit] of Object.entries(exits)) expect({ app, killedAfterGrace: exit?.killedAfterGrace, code: exit?.code }).toEqual({ app, killedAfterGrace: false, code: 0 });
    // One started while NATS is away never gets ready; SIGTERM (or its own failure to connect) must still end it.
    const starting = instance.processes.find((p) => p.app === 'state-resolver')!;
    const started = starting.start(30_000).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 3_000));
    const whileStarting = starting.running ? await starting.stop('SIGTERM', GRACE_MS) : undefined;
    await started;
    console.log(`shutdown without NATS: ${Object.entries(exits).map(([app, e]) => `${app} ${e?.ms} ms (code ${e?.code})`).join(', ')}; one starting: ${whileStarting ? `${whileStarting.ms} ms` : 'exited by itself'}`);
    expect(whileStarting?.killedAfterGrace ?? false).toBe(false);
  });
});
