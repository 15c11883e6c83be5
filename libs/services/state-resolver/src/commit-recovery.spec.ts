// Issue 10, defects 3, 4 and 6: a local commit is many writes; wherever the process dies (or the store or
// the bus fails) between them, the room stays usable, the event reaches the room log once, a redaction is
// not lost, and overlapping sends of one client transaction make one event.
import type { BusSubscription, RoomLogEntry } from '@fedgate/bus';
import type { Store } from '@fedgate/store';
import { StateResolver } from './state-resolver';
import { Crash } from './testing/crash';
import { TestNetwork, type TestServer } from './testing/test-server';

/** Another state-resolver process over the same store and bus (a restart, or a second replica). */
function processOver(server: TestServer, network: TestNetwork, crash?: Crash, commitWritesOneByOne = false, ownerReadCache = false): StateResolver {
  return server.offlineProcess(network, {
    store: crash ? crash.store(server.store, { commitWrites: commitWritesOneByOne ? 'one by one' : undefined }) : server.store,
    bus: crash ? crash.bus(server.bus) : server.bus,
    // The embedded gateway's: reads of its own writes from memory (each process its own, gone with it).
    ownerReadCache,
  });
}

/** What actually reached the room log stream (after the bus's dedupe), in order, until `lastEventId` is seen. */
async function roomLog(server: TestServer, roomId: string, lastEventId: string): Promise<RoomLogEntry[]> {
  const seen: RoomLogEntry[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const consumer = server.topology.consumers.chatSyncRoomLog(server.topology.roomLog.partitionOf(roomId));
  const subscription: BusSubscription = await server.bus.consume(consumer, async (m) => {
    if (m.data.roomId === roomId) seen.push(m.data);
    if (m.data.eventId === lastEventId) done();
  });
  await finished;
  await subscription.stop();
  return seen;
}

const bodyOf = (e: RoomLogEntry) => (e.event.content as { body?: unknown } | undefined)?.body;

describe('local commits cut short (issue 10, defects 3, 4, 6)', () => {
  let network: TestNetwork;
  let a: TestServer;
  const alice = '@alice:a.test';

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
  });
  afterEach(() => network.close());

  const message = (roomId: string, body: string, txnId: string) => ({ roomId, sender: alice, type: 'm.room.message', content: { msgtype: 'm.text', body }, txnId });

  async function writesOf(send: (resolver: StateResolver) => Promise<unknown>, oneByOne = false): Promise<number> {
    const crash = new Crash();
    await send(processOver(a, network, crash, oneByOne));
    return crash.writes;
  }

  /** Sends through a process that dies at write `dieAt`, then restarts (repair on start) and retries as the client would. */
  async function dieThenRestart(dieAt: number, command: ReturnType<typeof message>, oneByOne = false) {
    const dying = processOver(a, network, new Crash(dieAt), oneByOne);
    await dying.localEvents.onCommand(command).catch(() => undefined);
    const restarted = processOver(a, network);
    await restarted.start();
    const retried = await restarted.localEvents.onCommand(command);
    return { restarted, retried };
  }

  // Issue 19: the event's store writes go to the store together (one SQLite transaction in the embedded store; one
  // after the other where the store has no such transaction, as MongoDB): every write is a place to die at in both.
  it.each([
    ['one transaction (embedded store)', false, 5],
    ['one write at a time (as MongoDB)', true, 8],
  ])('a process dying at any write of a local send leaves the room usable and the message in the room log exactly once: commit writes in %s', async (_, oneByOne, writes) => {
    const roomId = await a.createRoom(alice);
    const total = await writesOf((r) => r.localEvents.onCommand(message(roomId, 'probe', 'probe')), oneByOne);
    expect(total).toBeGreaterThanOrEqual(writes);
    for (let dieAt = 1; dieAt <= total; dieAt++) {
      const body = `once-${dieAt}`;
      const { restarted, retried } = await dieThenRestart(dieAt, message(roomId, body, `txn-${dieAt}`), oneByOne);
      expect(retried).toMatchObject({ ok: true });
      const after = await restarted.localEvents.onCommand(message(roomId, `after-${dieAt}`, `after-${dieAt}`));
      expect(after).toMatchObject({ ok: true });
      await restarted.stop();

      const extremities = await a.store.rooms.getForwardExtremities(roomId);
      expect(extremities).toEqual([after.ok && after.eventId]);
      const logged = await roomLog(a, roomId, after.ok ? after.eventId : '');
      expect(logged.filter((e) => bodyOf(e) === body).map((e) => e.eventId)).toEqual([retried.ok && retried.eventId]);
      const stored = await a.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: 10_000, limit: 1000 });
      expect(stored.filter((e) => e.pdu.content.body === body)).toHaveLength(1);
      expect(await a.store.pendingCommits.list()).toEqual([]);
    }
  });

  it.each([
    ['one transaction (embedded store)', false, 3],
    ['one write at a time (as MongoDB)', true, 7],
  ])('issue 19: a commit whose journal record goes with its writes (no client transaction: as an inbound PDU), dying at any write, is all there once or not at all, and the room stays usable: commit writes in %s', async (_, oneByOne, writes) => {
    const roomId = await a.createRoom(alice);
    const send = (r: StateResolver, body: string) => r.localEvents.onCommand({ roomId, sender: alice, type: 'm.room.message', content: { msgtype: 'm.text', body } });
    const total = await writesOf((r) => send(r, 'probe'), oneByOne);
    expect(total).toBe(writes);
    for (let dieAt = 1; dieAt <= total; dieAt++) {
      const body = `journaled-${dieAt}`;
      await send(processOver(a, network, new Crash(dieAt), oneByOne), body).catch(() => undefined);
      const restarted = processOver(a, network);
      await restarted.start();
      const after = await send(restarted, `after-${dieAt}`);
      expect(after).toMatchObject({ ok: true });
      await restarted.stop();

      expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([after.ok && after.eventId]);
      const stored = (await a.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: 10_000, limit: 1000 })).filter((e) => e.pdu.content.body === body);
      const logged = (await roomLog(a, roomId, after.ok ? after.eventId : '')).filter((e) => bodyOf(e) === body);
      // Died at the first write (the journal record with the event's writes): nothing of it; after: all of it, logged once.
      expect(stored).toHaveLength(dieAt === 1 ? 0 : 1);
      expect(logged.map((e) => e.eventId)).toEqual(stored.map((e) => e.eventId));
      expect(await a.store.pendingCommits.list()).toEqual([]);
    }
  });

  it('a bus outage during a send: the send fails, the room stays usable, and the message goes out once, before the next', async () => {
    const roomId = await a.createRoom(alice);
    const outage = new Crash(1);
    const resolver = new StateResolver({
      store: a.store,
      bus: outage.bus(a.bus),
      topology: a.topology,
      identity: { serverName: a.name, signingKey: a.key },
      federation: {} as never,
      keyRing: network.keyRing(),
    });
    const failed = await resolver.localEvents.onCommand(message(roomId, 'during outage', 'o1')).catch((err: Error) => err);
    expect(failed).toBeInstanceOf(Error);
    // The bus is back; the same process goes on.
    outage.dieAt = Infinity;
    const next = await resolver.localEvents.onCommand(message(roomId, 'after outage', 'o2'));
    expect(next).toMatchObject({ ok: true });
    const retried = await resolver.localEvents.onCommand(message(roomId, 'during outage', 'o1'));
    expect(retried).toMatchObject({ ok: true });
    const logged = await roomLog(a, roomId, next.ok ? next.eventId : '');
    expect(logged.slice(-2).map(bodyOf)).toEqual(['during outage', 'after outage']);
    expect(logged.filter((e) => bodyOf(e) === 'during outage').map((e) => e.eventId)).toEqual([retried.ok && retried.eventId]);
  });

  it('a message whose send failed in a bus outage goes out once the bus is back, with no other work in the room', async () => {
    const roomId = await a.createRoom(alice);
    const outage = new Crash(1);
    const resolver = new StateResolver({
      store: a.store,
      bus: outage.bus(a.bus),
      topology: a.topology,
      identity: { serverName: a.name, signingKey: a.key },
      federation: {} as never,
      keyRing: network.keyRing(),
      repairIntervalMs: 20,
    });
    await resolver.start();
    try {
      const failed = await resolver.localEvents.onCommand(message(roomId, 'alone in the outage', 'q1')).catch((err: Error) => err);
      expect(failed).toBeInstanceOf(Error);
      const [pending] = await a.store.pendingCommits.list(roomId);
      outage.dieAt = Infinity;
      const logged = await roomLog(a, roomId, pending.eventId);
      expect(logged.filter((e) => bodyOf(e) === 'alone in the outage').map((e) => e.eventId)).toEqual([pending.eventId]);
    } finally {
      await resolver.stop();
    }
  });

  it('a store outage after the event became an extremity does not brick the room (no MissingStateError on later sends)', async () => {
    const roomId = await a.createRoom(alice);
    const total = await writesOf((r) => r.localEvents.onCommand(message(roomId, 'probe', 'probe')));
    for (let dieAt = 1; dieAt <= total; dieAt++) {
      const outage = new Crash(dieAt);
      const resolver = processOver(a, network, outage);
      await resolver.localEvents.onCommand(message(roomId, `lost-${dieAt}`, `l-${dieAt}`)).catch(() => undefined);
      outage.dieAt = Infinity;
      expect(await resolver.localEvents.onCommand(message(roomId, `next-${dieAt}`, `n-${dieAt}`))).toMatchObject({ ok: true });
    }
  });

  it('a redaction is not lost whichever write of its commit the process dies at', async () => {
    const roomId = await a.createRoom(alice);
    const redact = (target: string, txnId: string) => ({ roomId, sender: alice, type: 'm.room.redaction', content: { redacts: target }, txnId });
    const probeTarget = await a.send(roomId, alice, 'm.room.message', { body: 'probe' });
    const total = await writesOf((r) => r.localEvents.onCommand(redact(probeTarget.ok ? probeTarget.eventId : '', 'probe-redaction')));
    for (let dieAt = 1; dieAt <= total; dieAt++) {
      const target = await a.send(roomId, alice, 'm.room.message', { body: `target-${dieAt}` });
      const targetId = target.ok ? target.eventId : '';
      const dying = processOver(a, network, new Crash(dieAt));
      await dying.localEvents.onCommand(redact(targetId, `r-${dieAt}`)).catch(() => undefined);
      const restarted = processOver(a, network);
      await restarted.start();
      const retried = await restarted.localEvents.onCommand(redact(targetId, `r-${dieAt}`));
      await restarted.stop();
      expect(retried).toMatchObject({ ok: true });
      expect((await a.store.events.get(targetId))?.redactedBy).toBe(retried.ok && retried.eventId);
    }
  });

  it('two overlapping sends with one txnId make one event, and both answers name it', async () => {
    const roomId = await a.createRoom(alice);
    const command = message(roomId, 'overlap', 'same-txn');
    const [first, second] = await Promise.all([a.resolver.localEvents.onCommand(command), a.resolver.localEvents.onCommand(command)]);
    expect(first).toMatchObject({ ok: true });
    expect(second).toEqual(first);
    expect(a.published.filter((e) => bodyOf(e) === 'overlap')).toHaveLength(1);
  });

  it('two processes sending one txnId at once (two replicas) make one event: the store reserves the transaction', async () => {
    const roomId = await a.createRoom(alice);
    const command = message(roomId, 'two replicas', 'replica-txn');
    // The first process stops at its event's writes (the state refs first), the second sends meanwhile, then the first goes on.
    let reached!: () => void;
    let release!: () => void;
    const atStateRefs = new Promise<void>((resolve) => (reached = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    const paused: Store = {
      ...a.store,
      commits: {
        write: async (writes) => {
          reached();
          await gate;
          return a.store.commits.write(writes);
        },
        writeAll: (writes) => a.store.commits.writeAll(writes),
      },
    };
    const slow = new StateResolver({ store: paused, bus: a.bus, topology: a.topology, identity: { serverName: a.name, signingKey: a.key }, federation: {} as never, keyRing: network.keyRing() });
    const first = slow.localEvents.onCommand(command);
    await atStateRefs;
    const second = await processOver(a, network).localEvents.onCommand(command);
    release();
    expect(second).toMatchObject({ ok: true });
    expect(await first).toEqual(second);
    const stored = await a.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: 10_000, limit: 100 });
    expect(stored.filter((e) => e.pdu.content.body === 'two replicas').map((e) => e.eventId)).toEqual([second.ok && second.eventId]);
    expect(await a.store.pendingCommits.list()).toEqual([]);
  });

  // Issue 19: the partition consumer's commits leave their room log entries in the room's outbox; a run of a room goes
  // out as one batch, then the run's pending records go in one write. Dying at any write of a run (an event's commit,
  // the batch publish, the removal of the records) loses nothing, doubles nothing and keeps the room log's order.
  it.each([
    ['one transaction (embedded store)', false, false],
    ['one write at a time (as MongoDB)', true, false],
    // Issue 19 (commit-cpu): the sole writer's reads from memory (events the store does not hold included).
    ['one transaction (embedded store), the sole writer reading its own writes from memory', false, true],
  ])('issue 19: a run of inbound PDUs of one room, dying at any write of it, reaches the room log once each and in order: commit writes in %s', async (_, oneByOne, ownerReadCache) => {
    const b = await network.add('b.test');
    const roomId = await a.createRoom(alice);
    expect(await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
    const RUN = 4;
    const runFromB = async (tag: string) => {
      const ids: string[] = [];
      for (let i = 0; i < RUN; i++) {
        const sent = await b.send(roomId, '@bob:b.test', 'm.room.message', { msgtype: 'm.text', body: `${tag}-${i}` });
        ids.push(sent.ok ? sent.eventId : '');
      }
      // As the embedded bus hands over a claimed run: each but the last says more of the run is in hand.
      const messages = await Promise.all(
        ids.map(async (eventId, i) => {
          const pdu = (await b.store.events.get(eventId))!.pdu;
          const data = { eventId, roomId, roomVersion: '12', origin: 'b.test', txnId: tag, receivedAt: 0, redacted: false, pdu };
          return { data, deliveryCount: 1, working: () => undefined, moreInHand: i < RUN - 1 } as never;
        }),
      );
      return { ids, messages };
    };
    const deliver = async (resolver: StateResolver, messages: never[]) => {
      for (const m of messages) await resolver.onPartitionMessage(m);
    };

    const probe = await runFromB('probe');
    const counting = new Crash();
    const probing = processOver(a, network, counting, oneByOne, ownerReadCache);
    await deliver(probing, probe.messages);
    await probing.stop();
    // Embedded: the run's commits in one write (one per event before), then one batch publish and one removal for the
    // run (2 per event before that); one by one, every write of every commit.
    expect(counting.writes).toBe(oneByOne ? RUN * 5 + 2 : 3);
    expect((await roomLog(a, roomId, probe.ids.at(-1)!)).filter((e) => String(bodyOf(e)).startsWith('probe-')).map((e) => e.eventId)).toEqual(probe.ids);

    for (let dieAt = 1; dieAt <= counting.writes; dieAt++) {
      const run = await runFromB(`run-${dieAt}`);
      const dying = processOver(a, network, new Crash(dieAt), oneByOne, ownerReadCache);
      await deliver(dying, run.messages).catch(() => undefined);
      // Restarted: the repair on start, then the bus redelivers what was not acked (here: all of the run).
      const restarted = processOver(a, network, undefined, false, ownerReadCache);
      await restarted.start();
      await deliver(restarted, run.messages);
      await restarted.stop();

      expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual([run.ids.at(-1)]);
      expect((await roomLog(a, roomId, run.ids.at(-1)!)).filter((e) => String(bodyOf(e)).startsWith(`run-${dieAt}-`)).map((e) => e.eventId)).toEqual(run.ids);
      expect(await a.store.pendingCommits.list()).toEqual([]);
    }
  });
});
