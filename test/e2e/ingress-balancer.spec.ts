// Issue 12, ingress is stateless: a distributed fedgate with two federation-ingress processes behind one TCP
// balancer (the server name's port). A remote's transactions spread over both (the balancer recycles
// connections, some cut mid-request); one ingress is killed -9 mid-run. The
// remote's retries succeed through the other, and nothing it sent is delivered twice (the per-origin transaction
// lock and the record of answered transactions are in the store, shared by the replicas).
import { createTestCa, keepLogsAndDestroy, startFedgatePair, type FedgateInstance } from '@fedgate/testing';
import { expectExactlyOnceInOrder, sleep, startTrafficBothWays, trafficBothWays } from './chaos-traffic';

jest.setTimeout(300_000);

describe('several federation-ingress processes behind a TCP balancer (issue 12)', () => {
  let a: FedgateInstance;
  let b: FedgateInstance;

  beforeAll(async () => {
    const ca = createTestCa();
    [a, b] = await startFedgatePair(
      { shape: 'distributed', ca, name: 'a', ingressReplicas: 2, config: { replicas: { ownership: 'leases', leaseTtlMs: 5_000 } } },
      { shape: 'embedded', ca, name: 'b' },
    );
  }, 240_000);

  afterAll(() => keepLogsAndDestroy('ingress-balancer', [a, b]), 60_000);

  it("spreads the remote's connections over both ingresses; with one killed the remote's retries succeed and nothing is duplicated", async () => {
    const balancer = a.balancer!;
    const { roomId, fromA, fromB } = await startTrafficBothWays(a, b, 'balanced');
    const ingresses = a.processes.filter((p) => p.app === 'federation-ingress');
    let recoveredMs = 0;
    try {
      expect(ingresses).toHaveLength(2);
      // The remote keeps its connection alive: the balancer recycles connections now and then (as one draining
      // does), so the remote's next transactions go to the other replica (round robin per connection), some cut
      // mid-request and retried.
      for (let cut = 0; cut < 6 || balancer.connections.size < 2; cut++) {
        expect(cut).toBeLessThan(30);
        await sleep(2_000);
        balancer.cutConnections();
      }
      await trafficBothWays('connections cut by the balancer', [fromA, fromB], Date.now());
      const killedAt = Date.now();
      await ingresses[0]!.stop('SIGKILL');
      recoveredMs = (await trafficBothWays('kill -9 of one of two ingresses', [fromA, fromB], killedAt)) - killedAt;
      await sleep(3_000);
      await ingresses[0]!.start();
      await sleep(3_000);
    } finally {
      await fromA.stop();
      await fromB.stop();
    }
    await expectExactlyOnceInOrder(fromA, roomId);
    await expectExactlyOnceInOrder(fromB, roomId);
    console.log(
      `ingress behind a balancer: ${fromA.answered.length} + ${fromB.answered.length} messages, lost 0, duplicated 0; connections per ingress ${JSON.stringify(Object.fromEntries(balancer.connections))}; traffic both ways ${(recoveredMs / 1000).toFixed(1)} s after the kill`,
    );
  });
});
