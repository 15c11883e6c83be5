import { jetstreamManager } from '@nats-io/jetstream';
import { describeBusContract } from './contract/bus-contract';
import { term } from './bus';
import { waitFor } from './contract/wait-for';
import { JetStreamBus } from './jetstream-bus';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';

const natsUrl = () => {
  const url = process.env.FEDGATE_TEST_NATS_URL;
  if (!url) throw new Error('FEDGATE_TEST_NATS_URL is not set: run through the medium project (global setup starts NATS)');
  return url;
};

describeBusContract('JetStream', async (topology) => {
  const open = () => JetStreamBus.connect({ servers: natsUrl() }, { ...busOptionsFor(topology), retryDelayMs: () => 1 });
  let bus = await open();
  return {
    get bus() {
      return bus;
    },
    reopen: async () => {
      await bus.close();
      bus = await open();
      return bus;
    },
    readStream: (name) => bus.readStream(name),
    close: async () => {
      const jsm = await jetstreamManager(bus.connection);
      for (const stream of topology.allStreams) await jsm.streams.delete(stream.name).catch(() => undefined);
      await bus.close();
    },
  };
});

describe('JetStream bus: retention (issue 11)', () => {
  jest.setTimeout(60_000);
  let bus: JetStreamBus;
  let topology: ReturnType<typeof busTopology>;

  beforeEach(async () => {
    topology = busTopology({ prefix: `jsx${process.pid}x${Date.now().toString(36)}`, roomPartitions: 2 });
    bus = await JetStreamBus.connect({ servers: natsUrl() }, busOptionsFor(topology));
    await bus.start();
  });
  afterEach(async () => {
    const jsm = await jetstreamManager(bus.connection);
    for (const stream of topology.allStreams) await jsm.streams.delete(stream.name).catch(() => undefined);
    await bus.close();
  });

  it('defect 7: purges only what every consumer settled: a stopped consumer\'s unread messages, unread subjects and dead letters stay', async () => {
    const read = (n: number) => ({ eventId: `$p${n}`, roomId: '!r:x', roomVersion: '10', origin: 'o', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });
    const acked: string[] = [];
    const reading = await bus.consume(topology.consumers.stateResolverInbound(0), (m) => {
      if (m.messageId === '$p3') return term('refused');
      acked.push(m.messageId);
    });
    const stopped = await bus.consume(topology.consumers.stateResolverInbound(1), () => undefined);
    await stopped.stop();
    await bus.publish(topology.inboundPdu.partition(0), read(1), { messageId: '$p1' });
    await bus.publish(topology.inboundPdu.partition(1), read(2), { messageId: '$p2' });
    await bus.publish(topology.inboundPdu.partition(0), read(3), { messageId: '$p3' });
    await bus.publish(topology.parkedPdu.partition(0), { inbound: read(4), parkedAt: 0, reason: 'no consumer yet' }, { messageId: 'parked:$p4' });
    await waitFor(async () => acked.length === 1 && (await bus.readStream(topology.streams.deadLetters.name)).length === 1, 'handled');
    await waitFor(async () => (await bus.consumerStats(topology.consumers.stateResolverInbound(0))).ackPending === 0, 'settled');
    await reading.stop();

    expect(await bus.pruneConsumed()).toBe(2);
    expect((await bus.readStream<{ eventId?: string }>(topology.streams.inbound.name)).map((m) => m.messageId)).toEqual(['$p2', 'parked:$p4']);
    expect((await bus.readStream(topology.streams.deadLetters.name)).map((m) => m.messageId)).toHaveLength(1);
  });

  // Defect 7: streams had max_age 7 days, so dead letters and unread messages vanished after a week.
  it('defect 7: no stream drops messages by age (dead letters are kept until an operator removes them)', async () => {
    const jsm = await jetstreamManager(bus.connection);
    for (const stream of topology.allStreams) expect([stream.name, (await jsm.streams.info(stream.name)).config.max_age]).toEqual([stream.name, 0]);
  });
});
