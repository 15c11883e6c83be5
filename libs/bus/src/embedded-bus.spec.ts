import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { term } from './bus';
import { describeBusContract } from './contract/bus-contract';
import { waitFor } from './contract/wait-for';
import { EmbeddedBus } from './embedded-bus';
import type { DeadLetter, InboundPdu } from './messages';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';

describeBusContract('embedded (SQLite)', async (topology) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bus-'));
  const file = path.join(dir, 'bus.sqlite');
  const open = () => new EmbeddedBus({ ...busOptionsFor(topology), path: file, retryDelayMs: () => 1, pollIntervalMs: 20 });
  let bus = open();
  return {
    get bus() {
      return bus;
    },
    reopen: async () => {
      await bus.close();
      bus = open();
      return bus;
    },
    readStream: async (name) => bus.readStream(name),
    close: async () => {
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// Issue 11 defect 7: the embedded bus pruned every message older than 7 days, read or not, dead letters too.
describe('embedded bus retention', () => {
  const DAYS_30_MS = 30 * 24 * 60 * 60 * 1000;
  let dir: string;
  let file: string;
  const topology = busTopology({ prefix: 'retention', roomPartitions: 1, maxDeliver: 1 });
  const open = () => new EmbeddedBus({ ...busOptionsFor(topology), path: file, retryDelayMs: () => 1, pollIntervalMs: 20 });
  /** Moves every message 30 days into the past, as if the gateway had been running that long. */
  const ageEverything = () => {
    const db = new DatabaseSync(file);
    db.prepare('UPDATE bus_messages SET published_at = published_at - ?').run(DAYS_30_MS);
    db.close();
  };
  const pdu = (n: number): InboundPdu => ({ eventId: `$old${n}`, roomId: '!r:x', roomVersion: '10', origin: 'o', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bus-retention-'));
    file = path.join(dir, 'bus.sqlite');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('defect 7: keeps a message a stopped consumer has not read, however old', async () => {
    const consumer = topology.consumers.stateResolverInbound(0);
    let bus = open();
    await bus.start();
    const sub = await bus.consume(consumer, () => undefined);
    await sub.stop();
    await bus.publish(topology.inboundPdu.partition(0), pdu(1), { messageId: '$old1' });
    await bus.close();
    ageEverything();
    bus = open();
    await bus.start();
    const handled: string[] = [];
    const again = await bus.consume(consumer, (m) => void handled.push(m.messageId));
    await waitFor(() => handled.length === 1, 'the 30-day-old message');
    await again.stop();
    await bus.close();
    expect(handled).toEqual(['$old1']);
  });

  it('defect 7: keeps a message on a subject no consumer reads yet, and hands it to the consumer created later', async () => {
    let bus = open();
    await bus.start();
    await bus.publish(topology.inboundPdu.partition(0), pdu(3), { messageId: '$old3' });
    await bus.close();
    ageEverything();
    bus = open();
    await bus.start();
    const handled: string[] = [];
    const sub = await bus.consume(topology.consumers.stateResolverInbound(0), (m) => void handled.push(m.messageId));
    await waitFor(() => handled.length === 1, 'the message published before its consumer existed');
    await sub.stop();
    await bus.close();
    expect(handled).toEqual(['$old3']);
  });

  it('still prunes what every consumer settled, once the dedupe window passed', async () => {
    let bus = open();
    await bus.start();
    const handled: string[] = [];
    const sub = await bus.consume(topology.consumers.stateResolverInbound(0), (m) => void handled.push(m.messageId));
    await bus.publish(topology.inboundPdu.partition(0), pdu(4), { messageId: '$old4' });
    await waitFor(async () => handled.length === 1 && (await bus.consumerStats(topology.consumers.stateResolverInbound(0))).ackPending === 0, 'handled');
    await sub.stop();
    await bus.close();
    ageEverything();
    bus = open();
    await bus.start();
    const left = bus.readStream(topology.streams.inbound.name);
    await bus.close();
    expect(left).toEqual([]);
  });

  it('defect 7: keeps dead letters, however old, until an operator removes them', async () => {
    const consumer = topology.consumers.stateResolverInbound(0);
    let bus = open();
    await bus.start();
    const sub = await bus.consume(consumer, () => term('refused'));
    await bus.publish(topology.inboundPdu.partition(0), pdu(2), { messageId: '$old2' });
    await waitFor(() => bus.readStream(topology.streams.deadLetters.name).length === 1, 'a dead letter');
    await sub.stop();
    await bus.close();
    ageEverything();
    bus = open();
    await bus.start();
    const letters = bus.readStream<DeadLetter>(topology.streams.deadLetters.name);
    await bus.close();
    expect(letters.map((l) => [l.data.messageId, l.data.reason])).toEqual([['$old2', 'handler terminated: refused']]);
  });
});
