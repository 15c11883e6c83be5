// A consumer process for crash tests: applies each message's effect idempotently (the effects
// table has the message ID as key) and records every attempt. Configured through the environment.
import { DatabaseSync } from 'node:sqlite';
import { EmbeddedBus } from '../../embedded-bus';
import { JetStreamBus } from '../../jetstream-bus';
import { busOptionsFor } from '../../options';
import { busTopology } from '../../subjects';
import type { Bus } from '../../bus';

async function main(): Promise<void> {
  const env = process.env;
  const topology = busTopology({ prefix: env.BUS_PREFIX, roomPartitions: 1, ackWaitMs: 1000, maxDeliver: 20 });
  const effects = new DatabaseSync(env.EFFECTS_FILE as string);
  effects.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000;');
  effects.exec('CREATE TABLE IF NOT EXISTS effects (message_id TEXT PRIMARY KEY); CREATE TABLE IF NOT EXISTS attempts (message_id TEXT, delivery INTEGER);');
  const options = busOptionsFor(topology);
  const bus: Bus =
    env.BUS_KIND === 'jetstream'
      ? await JetStreamBus.connect({ servers: env.NATS_URL }, options)
      : new EmbeddedBus({ ...options, path: env.BUS_FILE as string, pollIntervalMs: 20 });
  await bus.start();
  const consumer = { ...topology.consumers.stateResolverInbound(0), maxAckPending: 64 };
  const recordAttempt = effects.prepare('INSERT INTO attempts (message_id, delivery) VALUES (?, ?)');
  const applyEffect = effects.prepare('INSERT OR IGNORE INTO effects (message_id) VALUES (?)');
  await bus.consume(consumer, async (message) => {
    recordAttempt.run(message.messageId, message.deliveryCount);
    applyEffect.run(message.messageId);
    // Yield between the effect and the ack, so a kill can land after one and before the other.
    await new Promise((r) => setImmediate(r));
  });
  process.send?.('ready');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
