// Merge of the dist branch (elastic ownership, issue 12) with flow's parking and peers-b's commit repair:
// a partition an elastic replica takes over must get everything a statically owned one gets.
import type { Bus, BusSubscription, RoomLogEntry } from '@fedgate/bus';
import type { ElasticOwnership } from '@fedgate/platform';
import pino from 'pino';
import { StateResolver } from './state-resolver';
import { Crash } from './testing/crash';
import { TestNetwork, type TestServer } from './testing/test-server';

const quiet = pino({ level: 'silent' });

describe('elastic state-resolver taking partitions over (dist merged with parking and commit repair)', () => {
  let network: TestNetwork;
  let a: TestServer;
  const alice = '@alice:a.test';

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
  });
  afterEach(() => network.close());

  function resolverOver(options: { bus?: Bus; crash?: Crash; elastic?: ElasticOwnership }): StateResolver {
    return a.offlineProcess(network, { store: options.crash ? options.crash.store(a.store) : a.store, bus: options.bus ?? a.bus, elastic: options.elastic });
  }

  const elastic = (instanceId: string): ElasticOwnership => ({ leases: a.store.leases, scope: 'test/state-resolver', instanceId, ttlMs: 5_000, logger: quiet });
  const message = (roomId: string, body: string, txnId: string) => ({ roomId, sender: alice, type: 'm.room.message', content: { msgtype: 'm.text', body }, txnId });

  async function roomLogUntil(roomId: string, lastEventId: string): Promise<RoomLogEntry[]> {
    const seen: RoomLogEntry[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const subscription: BusSubscription = await a.bus.consume(a.topology.consumers.chatSyncRoomLog(a.topology.roomLog.partitionOf(roomId)), async (m) => {
      if (m.data.roomId === roomId) seen.push(m.data);
      if (m.data.eventId === lastEventId) done();
    });
    await finished;
    await subscription.stop();
    return seen;
  }

  it('finishes the commits its dead predecessor cut short before serving the partition, with no retry from the client', async () => {
    const roomId = await a.createRoom(alice);
    // Die at each write in turn until one leaves a commit under way in the store.
    let pending: { eventId: string } | undefined;
    for (let dieAt = 1; !pending; dieAt++) {
      const dying = resolverOver({ crash: new Crash(dieAt) });
      await dying.localEvents.onCommand(message(roomId, 'cut short', `txn-${dieAt}`)).catch(() => undefined);
      [pending] = await a.store.pendingCommits.list(roomId);
      expect(dieAt).toBeLessThan(50);
    }
    const successor = resolverOver({ elastic: elastic('sr-successor') });
    await successor.start();
    try {
      expect(successor.ownedPartitions()).toContain(a.topology.roomLog.partitionOf(roomId));
      expect(await a.store.pendingCommits.list(roomId)).toEqual([]);
      const logged = await roomLogUntil(roomId, pending.eventId);
      expect(logged.filter((e) => e.eventId === pending.eventId)).toHaveLength(1);
    } finally {
      await successor.stop();
    }
  });

  it('consumes the parked consumer of every partition it takes, not only the ordered inbound one', async () => {
    const consumed: string[] = [];
    const recording = new Proxy(a.bus, {
      get: (bus, key) =>
        key === 'consume'
          ? (spec: { durable: string }, ...rest: unknown[]) => {
              consumed.push(spec.durable);
              return (bus.consume as (...args: unknown[]) => Promise<BusSubscription>).call(bus, spec, ...rest);
            }
          : (() => {
              const value: unknown = Reflect.get(bus, key);
              return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(bus) : value;
            })(),
    });
    const resolver = resolverOver({ bus: recording, elastic: elastic('sr-parking') });
    await resolver.start();
    try {
      const owned = resolver.ownedPartitions();
      expect(owned.length).toBe(a.topology.roomPartitions);
      for (const p of owned) {
        expect(consumed).toContain(a.topology.consumers.stateResolverInbound(p).durable);
        expect(consumed).toContain(a.topology.consumers.stateResolverParked(p).durable);
      }
    } finally {
      await resolver.stop();
    }
  });
});
