import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeBusContract } from './contract/bus-contract';
import { EmbeddedBus } from './embedded-bus';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';
import { waitFor } from './contract/wait-for';
import type { ReceivedMessage } from './bus';
import type { InboundPdu } from './messages';

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

describe('embedded bus wake-ups (issue 19: every publish woke every consumer loop, and idle loops polled)', () => {
  const pdu = (roomId: string, n: number) => ({ eventId: `$${n}`, roomId, roomVersion: '10', origin: 'remote.example', txnId: 't', receivedAt: 0, redacted: false, pdu: { n } });
  let dir: string;
  let bus: EmbeddedBus;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bus-'));
  });
  afterEach(async () => {
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a publish wakes only the consumers whose filter matches its subject; idle consumers claim nothing meanwhile', async () => {
    const topology = busTopology({ prefix: 'wake', roomPartitions: 8 });
    bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite'), pollIntervalMs: 5 });
    await bus.start();
    const claims = new Map<string, number>();
    const claimNext = bus.claimNext.bind(bus);
    jest.spyOn(bus, 'claimNext').mockImplementation((consumer, skip) => {
      claims.set(consumer.durable, (claims.get(consumer.durable) ?? 0) + 1);
      return claimNext(consumer, skip);
    });
    const busy = topology.inboundPdu.partitionOf('!busy:x');
    const handled: number[] = [];
    for (let p = 0; p < topology.roomPartitions; p++) {
      await bus.consume(topology.consumers.stateResolverInbound(p), (m: ReceivedMessage<InboundPdu>) => void (p === busy && handled.push(Number(m.data.pdu.n))));
    }
    const idle = topology.consumers.stateResolverInbound((busy + 1) % topology.roomPartitions).durable;
    const idleClaimsAtStart = claims.get(idle) ?? 0;
    for (let n = 0; n < 50; n++) await bus.publish(topology.inboundPdu.subjectFor('!busy:x'), pdu('!busy:x', n), { messageId: `m${n}` });
    await waitFor(() => handled.length === 50, 'the busy partition handled everything');
    // Many poll intervals pass (other processes' commits are looked for), but this consumer has no work.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(handled).toEqual([...Array(50).keys()]);
    expect((claims.get(idle) ?? 0) - idleClaimsAtStart).toBe(0);
  });

  it('settling and claiming the next message share one commit, yet a consumer stopped mid-delivery leases nothing more', async () => {
    const topology = busTopology({ prefix: 'stop', roomPartitions: 1 });
    bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite') });
    await bus.start();
    const consumer = topology.consumers.stateResolverInbound(0);
    for (let n = 0; n < 2; n++) await bus.publish(topology.inboundPdu.subjectFor('!r:x'), pdu('!r:x', n), { messageId: `m${n}` });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    const first = await bus.consume(consumer, async () => {
      entered();
      await gate;
    });
    await inHandler;
    const stopped = first.stop();
    release();
    await stopped;
    expect(await bus.consumerStats(consumer)).toEqual({ pending: 1, ackPending: 0 });
    const seen: Array<[number, number]> = [];
    await bus.consume(consumer, (m: ReceivedMessage<InboundPdu>) => void seen.push([Number(m.data.pdu.n), m.deliveryCount]));
    await waitFor(() => seen.length === 1, 'the second message, at once');
    expect(seen).toEqual([[1, 1]]);
  });
});
