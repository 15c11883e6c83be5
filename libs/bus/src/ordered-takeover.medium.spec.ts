// Issue 12, takeover faster than the ack wait: the message a dead replica had taken from an ordered
// consumer (one in flight, holding its partition up) waited JetStream's 30 s ack wait before its new owner got
// it. Ordered consumers (and the parked ones, whose every delivered message is in a handler) now have a short
// ack wait, and a handler at work renews it with heartbeats.
import { jetstreamManager } from '@nats-io/jetstream';
import type { InboundPdu } from './messages';
import { waitFor } from './contract/wait-for';
import { JetStreamBus } from './jetstream-bus';
import { busOptionsFor } from './options';
import { busTopology, type BusTopology } from './subjects';

const natsUrl = () => {
  const url = process.env.FEDGATE_TEST_NATS_URL;
  if (!url) throw new Error('FEDGATE_TEST_NATS_URL is not set: run through the medium project (global setup starts NATS)');
  return url;
};
/** `replicas.leaseTtlMs` by default: a dead replica's partitions move this long after its last renewal. */
const DEFAULT_LEASE_TTL_MS = 10_000;
const pdu = (n: number): InboundPdu => ({ eventId: `$t${n}`, roomId: '!r:x', roomVersion: '10', origin: 'o', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });

describe('JetStream bus: takeover of an ordered consumer sooner than the ack wait (issue 12)', () => {
  jest.setTimeout(60_000);
  const buses: JetStreamBus[] = [];
  let topology: BusTopology;
  const open = async (t: BusTopology) => {
    const bus = await JetStreamBus.connect({ servers: natsUrl() }, busOptionsFor(t));
    buses.push(bus);
    await bus.start();
    return bus;
  };

  afterEach(async () => {
    const [first] = buses.filter((b) => !b.connection.isClosed());
    if (first) {
      const jsm = await jetstreamManager(first.connection);
      for (const stream of topology.allStreams) await jsm.streams.delete(stream.name).catch(() => undefined);
    }
    for (const bus of buses.splice(0)) if (!bus.connection.isClosed()) await bus.close();
  });

  it("hands the message a dead replica had taken to the partition's next consumer once the short ack wait runs out, well before the lease moves", async () => {
    topology = busTopology({ prefix: `tko${process.pid}x${Date.now().toString(36)}`, roomPartitions: 1 });
    const spec = topology.consumers.stateResolverInbound(0);
    const dying = await open(topology);
    const taken: string[] = [];
    // The handler never finishes: the process dies holding the message.
    await dying.consume(spec, (m) => {
      taken.push(m.messageId);
      return new Promise(() => undefined);
    });
    await dying.publish(topology.inboundPdu.partition(0), pdu(1), { messageId: '$t1' });
    await waitFor(() => taken.length === 1, 'the first replica took the message');
    await dying.connection.close();

    const successor = await open(topology);
    const jsm = await jetstreamManager(successor.connection);
    const info = await jsm.consumers.info(spec.stream, spec.durable);
    expect((info.config.ack_wait ?? 0) / 1e6).toBeLessThanOrEqual(DEFAULT_LEASE_TTL_MS / 2);
    expect(topology.consumers.stateResolverParked(0).ackWaitMs).toBeLessThanOrEqual(DEFAULT_LEASE_TTL_MS / 2);
    const redelivered: Array<{ id: string; count: number }> = [];
    await successor.consume(spec, (m) => void redelivered.push({ id: m.messageId, count: m.deliveryCount }));
    // The wait bound only stops a hung test; before the fix the message came back after 30 s.
    await waitFor(() => redelivered.length === 1, 'the successor got the message', 20_000);
    expect(redelivered).toEqual([{ id: '$t1', count: 2 }]);
  });

  it('does not hand the message of a handler still at work past the ack wait to another consumer (heartbeats renew it)', async () => {
    topology = busTopology({ prefix: `hb${process.pid}x${Date.now().toString(36)}`, roomPartitions: 1, handledAckWaitMs: 600 });
    const spec = topology.consumers.stateResolverInbound(0);
    const working = await open(topology);
    const waiting = await open(topology);
    const deliveries: Array<{ id: string; count: number; by: string }> = [];
    await working.consume(spec, async (m) => {
      deliveries.push({ id: m.messageId, count: m.deliveryCount, by: 'working' });
      if (m.messageId === '$t1') await new Promise((r) => setTimeout(r, 2_500));
    });
    await working.publish(topology.inboundPdu.partition(0), pdu(1), { messageId: '$t1' });
    await waitFor(() => deliveries.length === 1, 'the slow handler took the message');
    // A second replica on the same partition (as while a partition moves) is ready to take anything redelivered.
    await waiting.consume(spec, (m) => void deliveries.push({ id: m.messageId, count: m.deliveryCount, by: 'waiting' }));
    await working.publish(topology.inboundPdu.partition(0), pdu(2), { messageId: '$t2' });
    await waitFor(() => deliveries.some((d) => d.id === '$t2'), 'both handled');
    await waitFor(async () => (await working.consumerStats(spec)).ackPending === 0, 'settled');
    expect(deliveries.filter((d) => d.id === '$t1')).toEqual([{ id: '$t1', count: 1, by: 'working' }]);
  });
});
