// A second service for the cross-process trace test: consumes one consumer and logs each message
// with pino (the log line carries the trace the bus propagated).
import { busOptionsFor, busTopology, JetStreamBus } from '@fedgate/bus';
import { createLogger } from '../logger';
import { setupTracing } from '../tracing';

async function main(): Promise<void> {
  setupTracing({ service: 'traced-consumer' });
  const logger = createLogger({ service: 'traced-consumer' });
  const topology = busTopology({ prefix: process.env.BUS_PREFIX, roomPartitions: 1 });
  const bus = await JetStreamBus.connect({ servers: process.env.NATS_URL }, busOptionsFor(topology));
  await bus.start();
  await bus.consume(topology.consumers.stateResolverInbound(0), (message) => {
    logger.info({ messageId: message.messageId }, 'handled');
  });
  process.send?.('ready');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
