// Issue 10, defect 3, on the distributed shape's parts: the MongoDB-wire store and NATS JetStream. A
// state-resolver dying at any write of a local send, then restarted, leaves the room usable and the
// message on the room log exactly once.
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { busOptionsFor, busTopology, JetStreamBus } from '@fedgate/bus';
import { generateSigningKey } from '@fedgate/protocol';
import { openMongoStore, type Store } from '@fedgate/store';
import { StateResolver } from './state-resolver';
import { roomLogUntil } from './testing/room-log-until';
import { Crash } from './testing/crash';

jest.setTimeout(180_000);

describe('local commits cut short on MongoDB and JetStream (issue 10, defect 3)', () => {
  const unique = `cr_${randomBytes(4).toString('hex')}`;
  const topology = busTopology({ prefix: unique, roomPartitions: 2 });
  const key = generateSigningKey();
  const alice = '@alice:a.test';
  let store: Store;
  let bus: JetStreamBus;

  beforeAll(async () => {
    store = await openMongoStore(process.env.FEDGATE_TEST_MONGO_URL!, `fedgate_${unique}`);
    bus = await JetStreamBus.connect({ servers: process.env.FEDGATE_TEST_NATS_URL! }, busOptionsFor(topology));
    await bus.start();
  });
  afterAll(async () => {
    await bus?.close();
    await store?.close();
    const client = await MongoClient.connect(process.env.FEDGATE_TEST_MONGO_URL!);
    await client.db(`fedgate_${unique}`).dropDatabase();
    await client.close();
  });

  const processOver = (crash?: Crash) =>
    new StateResolver({
      store: crash ? crash.store(store) : store,
      bus: crash ? crash.bus(bus) : bus,
      topology,
      identity: { serverName: 'a.test', signingKey: key },
      federation: {} as never,
      keyRing: { prepare: async () => () => undefined },
    });

  const message = (roomId: string, body: string, txnId: string) => ({ roomId, sender: alice, type: 'm.room.message', content: { msgtype: 'm.text', body }, txnId });

  it('a process dying at any write of a send, then restarted: the room goes on and the message is on the room log once', async () => {
    const first = processOver();
    const { roomId } = await first.localEvents.create({ roomId: '', sender: alice, type: 'm.room.create', stateKey: '', content: { room_version: '10' } });
    await first.localEvents.create({ roomId, sender: alice, type: 'm.room.member', stateKey: alice, content: { membership: 'join' } });
    const probe = new Crash();
    await processOver(probe).localEvents.create(message(roomId, 'probe', 'probe'));

    const sent: Array<{ body: string; eventId: string }> = [];
    for (let dieAt = 1; dieAt <= probe.writes; dieAt++) {
      const command = message(roomId, `once-${dieAt}`, `txn-${dieAt}`);
      await processOver(new Crash(dieAt))
        .localEvents.create(command)
        .catch(() => undefined);
      const restarted = processOver();
      await restarted.start();
      const retried = await restarted.localEvents.create(command);
      await restarted.stop();
      sent.push({ body: command.content.body, eventId: retried.eventId });
    }
    const last = await processOver().localEvents.create(message(roomId, 'last', 'last'));
    expect(await store.rooms.getForwardExtremities(roomId)).toEqual([last.eventId]);
    expect(await store.pendingCommits.list(roomId)).toEqual([]);

    const logged = await roomLogUntil(bus, topology, roomId, last.eventId);
    for (const { body, eventId } of sent) {
      expect(logged.filter((e) => (e.event.content as { body?: string }).body === body).map((e) => e.eventId)).toEqual([eventId]);
    }
  });
});
