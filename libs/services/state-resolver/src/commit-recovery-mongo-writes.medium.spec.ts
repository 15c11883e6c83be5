// crash-gaps: commit-recovery.medium.spec.ts kills the process between the store's repository calls; on MongoDB each
// of those is itself one or more collection writes (a pending record is a counter and an update, a state snapshot
// several rows, …). Here the process dies before every collection write of a local send and of a state event in
// turn (`MongoWriteCrash`), then is restarted (repair on start) and the client retries.
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { busOptionsFor, busTopology, JetStreamBus, type RoomLogEntry } from '@fedgate/bus';
import { generateSigningKey } from '@fedgate/protocol';
import { MongoWriteCrash, openMongoStore, stateTupleKey, type Store } from '@fedgate/store';
import { StateResolver } from './state-resolver';
import { roomLogUntil } from './testing/room-log-until';

jest.setTimeout(300_000);

describe('local commits cut at every MongoDB collection write (crash-gaps)', () => {
  const unique = `crw_${randomBytes(4).toString('hex')}`;
  const topology = busTopology({ prefix: unique, roomPartitions: 2 });
  const key = generateSigningKey();
  const alice = '@alice:a.test';
  const crash = new MongoWriteCrash();
  let store: Store;
  let dyingStore: Store;
  let bus: JetStreamBus;

  beforeAll(async () => {
    store = await openMongoStore(process.env.FEDGATE_TEST_MONGO_URL!, `fedgate_${unique}`);
    dyingStore = await openMongoStore(process.env.FEDGATE_TEST_MONGO_URL!, `fedgate_${unique}`, { wrapCollections: (c) => crash.collections(c) });
    bus = await JetStreamBus.connect({ servers: process.env.FEDGATE_TEST_NATS_URL! }, busOptionsFor(topology));
    await bus.start();
  });
  afterAll(async () => {
    await bus?.close();
    await dyingStore?.close();
    await store?.close();
    const client = await MongoClient.connect(process.env.FEDGATE_TEST_MONGO_URL!);
    await client.db(`fedgate_${unique}`).dropDatabase();
    await client.close();
  });

  const processOver = (s: Store) =>
    new StateResolver({ store: s, bus, topology, identity: { serverName: 'a.test', signingKey: key }, federation: {} as never, keyRing: { prepare: async () => () => undefined } });

  it.each([
    ['a message', (roomId: string, n: string) => ({ roomId, sender: alice, type: 'm.room.message', content: { msgtype: 'm.text', body: n }, txnId: `message-${n}` })],
    ['a state event', (roomId: string, n: string) => ({ roomId, sender: alice, type: 'm.room.topic', stateKey: '', content: { topic: n }, txnId: `topic-${n}` })],
  ] as const)('%s: dying before any collection write, restarted and retried, the room goes on, the event is on the room log once and current state holds it', async (_, command) => {
    const first = processOver(store);
    const { roomId } = await first.localEvents.create({ roomId: '', sender: alice, type: 'm.room.create', stateKey: '', content: { room_version: '10' } });
    await first.localEvents.create({ roomId, sender: alice, type: 'm.room.member', stateKey: alice, content: { membership: 'join' } });
    crash.arm(Infinity);
    await processOver(dyingStore).localEvents.create(command(roomId, 'probe'));
    const writes = [...crash.log];
    expect(writes.length).toBeGreaterThanOrEqual(6);

    const sent: Array<{ n: string; eventId: string; diedBefore: string }> = [];
    for (let dieAt = 1; dieAt <= writes.length; dieAt++) {
      const n = `once-${dieAt}`;
      crash.arm(dieAt);
      await processOver(dyingStore)
        .localEvents.create(command(roomId, n))
        .catch(() => undefined);
      const restarted = processOver(store);
      await restarted.start();
      const retried = await restarted.localEvents.create(command(roomId, n));
      await restarted.stop();
      sent.push({ n, eventId: retried.eventId, diedBefore: writes[dieAt - 1]! });
      expect({ dieAt, diedBefore: writes[dieAt - 1], extremities: await store.rooms.getForwardExtremities(roomId) }).toEqual({ dieAt, diedBefore: writes[dieAt - 1], extremities: [retried.eventId] });
      expect(await store.pendingCommits.list(roomId)).toEqual([]);
    }
    const last = await processOver(store).localEvents.create(command(roomId, 'last'));
    expect(await store.rooms.getForwardExtremities(roomId)).toEqual([last.eventId]);
    const logged = await roomLogUntil(bus, topology, roomId, last.eventId);
    const nOf = (e: RoomLogEntry) => (e.event.content as { body?: string; topic?: string }).body ?? (e.event.content as { topic?: string }).topic;
    for (const { n, eventId, diedBefore } of sent) {
      expect({ n, diedBefore, logged: logged.filter((e) => nOf(e) === n).map((e) => e.eventId) }).toEqual({ n, diedBefore, logged: [eventId] });
    }
    const room = await store.rooms.get(roomId);
    const current = await store.state.load(room!.currentStateId!);
    if (command(roomId, 'x').type === 'm.room.topic') expect(current?.get(stateTupleKey('m.room.topic', ''))).toBe(last.eventId);
  });

  it('a redaction: dying before any collection write of its commit, restarted and retried, the target is redacted by it', async () => {
    const first = processOver(store);
    const { roomId } = await first.localEvents.create({ roomId: '', sender: alice, type: 'm.room.create', stateKey: '', content: { room_version: '10' } });
    await first.localEvents.create({ roomId, sender: alice, type: 'm.room.member', stateKey: alice, content: { membership: 'join' } });
    const target = async (n: string) => (await first.localEvents.create({ roomId, sender: alice, type: 'm.room.message', content: { msgtype: 'm.text', body: n }, txnId: `target-${n}` })).eventId;
    const redact = (targetId: string, n: string) => ({ roomId, sender: alice, type: 'm.room.redaction', content: { redacts: targetId }, txnId: `redaction-${n}` });
    crash.arm(Infinity);
    await processOver(dyingStore).localEvents.create(redact(await target('probe'), 'probe'));
    const writes = [...crash.log];
    expect(writes).toContain('events.updateOne');
    for (let dieAt = 1; dieAt <= writes.length; dieAt++) {
      const targetId = await target(`t-${dieAt}`);
      crash.arm(dieAt);
      await processOver(dyingStore)
        .localEvents.create(redact(targetId, `r-${dieAt}`))
        .catch(() => undefined);
      const restarted = processOver(store);
      await restarted.start();
      const retried = await restarted.localEvents.create(redact(targetId, `r-${dieAt}`));
      await restarted.stop();
      expect({ dieAt, diedBefore: writes[dieAt - 1], redactedBy: (await store.events.get(targetId))?.redactedBy }).toEqual({ dieAt, diedBefore: writes[dieAt - 1], redactedBy: retried.eventId });
      expect(await store.pendingCommits.list(roomId)).toEqual([]);
    }
  });
});
