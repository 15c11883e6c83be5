// Issue 12, NATS as operators run it: a distributed fedgate on a 3-node nats-server cluster (a current release,
// built from the Go module proxy), every stream with 3 replicas; one node is killed -9 under traffic both ways
// and started again. Every message answered to its sender reaches the other side once, in order.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createTestCa, LocalNatsCluster, startFedgate, type FedgateInstance } from '@fedgate/testing';
import { expectExactlyOnceInOrder, eventually, Sender, sleep, trafficBothWays } from './chaos-traffic';

jest.setTimeout(600_000);

describe('3-node NATS cluster, streams with 3 replicas (issue 12)', () => {
  let cluster: LocalNatsCluster;
  let a: FedgateInstance;
  let b: FedgateInstance;

  beforeAll(async () => {
    cluster = await LocalNatsCluster.start(3);
    const ca = createTestCa();
    [a, b] = await Promise.all([
      startFedgate({
        shape: 'distributed',
        ca,
        name: 'a',
        config: { nats: { url: cluster.url }, bus: { prefix: 'clustered', publishRetryMs: 15_000, streamReplicas: 3 }, replicas: { ownership: 'leases', leaseTtlMs: 5_000 } },
      }),
      startFedgate({ shape: 'embedded', ca, name: 'b' }),
    ]);
  }, 600_000);

  afterAll(async () => {
    const dir = path.join(__dirname, '..', '..', 'test-results', 'nats-cluster');
    await mkdir(dir, { recursive: true });
    for (const instance of [a, b]) if (instance) await writeFile(path.join(dir, `${instance.name}.log`), instance.logs());
    await Promise.all([a?.destroy(), b?.destroy()]);
    await cluster?.stop();
  }, 120_000);

  it('keeps every stream on 3 nodes and loses nothing when one node is killed under traffic both ways', async () => {
    const nc = await connect({ servers: cluster.url.split(',') });
    try {
      const jsm = await jetstreamManager(nc);
      const replicas: Record<string, number> = {};
      for await (const stream of jsm.streams.list()) if (stream.config.name.startsWith('CLUSTERED_')) replicas[stream.config.name] = stream.config.num_replicas;
      expect(Object.keys(replicas).length).toBeGreaterThanOrEqual(5);
      expect(new Set(Object.values(replicas))).toEqual(new Set([3]));
    } finally {
      await nc.close();
    }

    const bridgeA = a.bridge!;
    const bridgeB = b.bridge!;
    const alice = await bridgeA.registerVirtualUser('achat_alice');
    const bob = await bridgeB.registerVirtualUser('bchat_bob');
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'clustered' });
    await bridgeB.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
    await bridgeA.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', 30_000);

    const fromA = new Sender(bridgeA, alice, roomId, 'A', bridgeB);
    const fromB = new Sender(bridgeB, bob, roomId, 'B', bridgeA);
    fromA.start();
    fromB.start();
    const recovered: string[] = [];
    try {
      await eventually('traffic flowing', () => fromA.answered.length >= 3 && fromB.answered.length >= 3, (ok) => ok);
      // The first node is the one every process dialled first: the hardest one to lose. The long run
      // (`npm run chaos`) loses a second one after the first is back.
      for (const node of process.env.FEDGATE_TEST_CHAOS === 'long' ? [0, 1] : [0]) {
        const killedAt = Date.now();
        await cluster.killNode(node);
        const back = await trafficBothWays(`kill -9 of NATS node ${node + 1}`, [fromA, fromB], killedAt);
        recovered.push(`node ${node + 1} killed: ${((back - killedAt) / 1000).toFixed(1)} s`);
        await sleep(3_000);
        await cluster.startNode(node);
        await sleep(5_000);
      }
    } finally {
      await fromA.stop();
      await fromB.stop();
    }
    await expectExactlyOnceInOrder(fromA, roomId);
    await expectExactlyOnceInOrder(fromB, roomId);
    console.log(`NATS cluster (3 nodes, R3): ${fromA.answered.length} + ${fromB.answered.length} messages, lost 0, duplicated 0; traffic both ways again after ${recovered.join(', ')}`);
  });
});
