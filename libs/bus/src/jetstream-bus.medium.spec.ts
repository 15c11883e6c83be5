import { jetstreamManager } from '@nats-io/jetstream';
import { describeBusContract } from './contract/bus-contract';
import { JetStreamBus } from './jetstream-bus';
import { busOptionsFor } from './options';

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
