// crash-gaps: a process dying between the writes of a store method that is more than one write on MongoDB/FerretDB
// (no multi-document transactions). Each test dies before every write in turn (`MongoWriteCrash`), then runs what
// the service runs after a restart (the bus redelivering, the repair, the next owner) on a store that does not die.
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import type { AppServiceQueueItem } from '../ports/chat';
import type { Store } from '../ports/store';
import { RoomWriteFencedError, type RoomWriteFence } from '../ports/pending-commits';
import { openMongoStore } from './store';
import { MongoWriteCrash } from './write-crash';

const url = process.env.FEDGATE_TEST_MONGO_URL as string;
const db = `fedgate_crash_gaps_${randomBytes(4).toString('hex')}`;
const crash = new MongoWriteCrash();
let dying: Store;
let restarted: Store;

beforeAll(async () => {
  dying = await openMongoStore(url, db, { wrapCollections: (c) => crash.collections(c) });
  restarted = await openMongoStore(url, db);
});
afterAll(async () => {
  await dying?.close();
  await restarted?.close();
  const client = await MongoClient.connect(url);
  await client.db(db).dropDatabase();
  await client.close();
});

/** How many collection writes `run` makes on the dying store when it does not die. */
async function writesOf(run: () => Promise<unknown>): Promise<string[]> {
  crash.arm(Infinity);
  await run();
  return [...crash.log];
}

const unique = (name: string) => `${name}-${randomBytes(3).toString('hex')}`;

describe('AS queue: enqueueMany cut short by the process dying (mongo, crash-gaps)', () => {
  // A bus run of pushes as chat-sync queues it, then acks the run: a death mid-loop leaves the run unacked, so the
  // bus hands the same run over again (same item IDs: each push's ID).
  const run: AppServiceQueueItem[] = [
    { itemId: '$e1', kind: 'event', event: { event_id: '$e1' } },
    { itemId: 'typing-1', kind: 'ephemeral', event: { type: 'm.typing', id: 'typing-1' } },
    { itemId: '$e2', kind: 'event', event: { event_id: '$e2' } },
    { itemId: '$e3', kind: 'event', event: { event_id: '$e3' } },
    { itemId: 'receipt-1', kind: 'ephemeral', event: { type: 'm.receipt', id: 'receipt-1' } },
  ];
  const limits = { maxEvents: 2, maxEphemeral: 1 };

  /** Pushes (opens and acks) up to `transactions` transactions; answers what went out, in order. */
  async function push(store: Store, as: string, transactions = Infinity): Promise<string[]> {
    const sent: string[] = [];
    for (let i = 0; i < transactions; i++) {
      const txn = await store.appServiceQueue.openTransaction(as, limits);
      if (!txn) break;
      for (const e of txn.events) sent.push(String(e.event_id));
      for (const e of txn.ephemeral) sent.push(String(e.id));
      await store.appServiceQueue.ackTransaction(as, txn.txnId);
    }
    return sent;
  }

  const eventsIn = (sent: string[]) => sent.filter((id) => id.startsWith('$'));

  it.each([
    ['the run handed over again at once', 'none'],
    ['the pusher delivering what was queued before the run is handed over again', 'push'],
    ['a transaction opened before the run is handed over again, acked after', 'open'],
  ] as const)('dying before any write of the loop, then %s: every item pushed once, events in order', async (_, between) => {
    const writes = await writesOf(() => dying.appServiceQueue.enqueueMany(unique('probe'), run));
    expect(writes.length).toBeGreaterThanOrEqual(run.length);
    for (let dieAt = 1; dieAt <= writes.length; dieAt++) {
      const as = unique(`as-${dieAt}`);
      crash.arm(dieAt);
      await expect(dying.appServiceQueue.enqueueMany(as, run)).rejects.toThrow('simulated crash');
      const sent: string[] = [];
      let opened: string | undefined;
      if (between === 'push') sent.push(...(await push(restarted, as)));
      if (between === 'open') {
        const txn = await restarted.appServiceQueue.openTransaction(as, limits);
        opened = txn?.txnId;
        for (const e of txn?.events ?? []) sent.push(String(e.event_id));
        for (const e of txn?.ephemeral ?? []) sent.push(String(e.id));
      }
      const again = await restarted.appServiceQueue.enqueueMany(as, run);
      expect(again).toHaveLength(run.length);
      if (opened !== undefined) await restarted.appServiceQueue.ackTransaction(as, opened);
      sent.push(...(await push(restarted, as)));
      expect({ dieAt, diedBefore: crash.log[dieAt - 1], sent: [...sent].sort() }).toEqual({ dieAt, diedBefore: crash.log[dieAt - 1], sent: run.map((i) => i.itemId).sort() });
      expect(eventsIn(sent)).toEqual(['$e1', '$e2', '$e3']);
      expect(await restarted.appServiceQueue.pendingCount(as)).toBe(0);
      // And handed over once more after all went out (a bus ack lost): nothing queued again.
      expect(await restarted.appServiceQueue.enqueueMany(as, run)).toEqual(run.map(() => ({ inserted: false, delivered: true })));
    }
  });
});

// The cached device list of another server's user is replaced (compare-and-set), then a `remote` change is logged: the
// services' notice (MSC3202 `device_lists.changed`, `/keys/changes`) that they must query the user's keys again. A
// death between lost the notice for good: the list was written, so the EDU handed over again or the resync finds
// nothing newer to write and logs nothing.
describe('a remote device list replaced, its change not logged (mongo, crash-gaps)', () => {
  const list = (userId: string, streamId: number) => ({
    userId,
    streamId,
    devices: { [`D${streamId}`]: {} },
    masterKey: null,
    selfSigningKey: null,
    stale: false,
    updatedTs: 1_000 + streamId,
  });
  const remoteChangesOf = async (userId: string) => (await restarted.deviceLists.changesSince(0, 100_000)).filter((c) => c.userId === userId && c.kind === 'remote');

  it.each([
    ['the first list held (insert)', null],
    ['a newer list over the held one (compare-and-set)', 1],
  ] as const)('defect: dying at any write of %s; the finishing pass chat-sync runs on start and every minute logs the change', async (_, heldStreamId) => {
    const probeUser = `@probe-${randomBytes(3).toString('hex')}:remote.test`;
    if (heldStreamId !== null) await restarted.deviceLists.replaceRemoteList(list(probeUser, heldStreamId), null);
    const writes = await writesOf(() => dying.deviceLists.replaceRemoteList(list(probeUser, 2), heldStreamId === null ? null : { streamId: heldStreamId, stale: false }, { logChange: true }));
    expect(writes.length).toBeGreaterThanOrEqual(2);
    for (let dieAt = 1; dieAt <= writes.length; dieAt++) {
      const userId = `@cut-${dieAt}-${randomBytes(3).toString('hex')}:remote.test`;
      if (heldStreamId !== null) await restarted.deviceLists.replaceRemoteList(list(userId, heldStreamId), null);
      crash.arm(dieAt);
      const expected = heldStreamId === null ? null : { streamId: heldStreamId, stale: false };
      await expect(dying.deviceLists.replaceRemoteList(list(userId, 2), expected, { logChange: true })).rejects.toThrow('simulated crash');
      const written = (await restarted.deviceLists.remoteList(userId))?.streamId === 2;
      // What chat-sync does after the restart: the EDU handed over again finds the list written already (nothing to
      // write: the compare-and-set fails) or writes it now; the finishing pass (start, every minute) runs after.
      if (!written) expect(await restarted.deviceLists.replaceRemoteList(list(userId, 2), expected, { logChange: true })).toBe(true);
      await restarted.deviceKeys.finishPendingChanges(Date.now() + 1);
      expect({ dieAt, diedBefore: crash.log[dieAt - 1], logged: (await remoteChangesOf(userId)).length > 0 }).toEqual({ dieAt, diedBefore: crash.log[dieAt - 1], logged: true });
      expect((await restarted.deviceLists.remoteList(userId))?.streamId).toBe(2);
      // Finished once: the next pass has nothing left of it.
      const before = (await remoteChangesOf(userId)).length;
      await restarted.deviceKeys.finishPendingChanges(Date.now() + 1);
      expect((await remoteChangesOf(userId)).length).toBe(before);
    }
  });
});

// resync-store-fence: a resync's write of room data under its lease (`RoomWriteFence`) is, here, the room's fence checked
// and raised on its commits document (one conditional write), then the write itself in its own collection.
describe('a fenced write of room data: the fence and the write are two writes (mongo, crash-gaps)', () => {
  type Kind = { name: string; write: (s: Store, roomId: string, fence: RoomWriteFence, value: string) => Promise<unknown>; read: (s: Store, roomId: string) => Promise<unknown> };
  const eventOf = (roomId: string) => `$ev-${roomId.slice(1, 9)}`;
  const kinds: Kind[] = [
    {
      name: 'outcome',
      write: (s, roomId, fence, value) => s.events.setOutcome(eventOf(roomId), { status: 'rejected', reason: value, outlier: false }, fence),
      read: async (s, roomId) => (await s.events.get(eventOf(roomId)))?.reason ?? null,
    },
    { name: 'state refs', write: (s, roomId, fence, value) => s.state.setForEvent(eventOf(roomId), { before: value, after: value }, fence), read: (s, roomId) => s.state.getForEvent(eventOf(roomId)) },
    { name: 'forward extremities', write: (s, roomId, fence, value) => s.rooms.updateForwardExtremities(roomId, { add: [`$${value}`], remove: [] }, fence), read: (s, roomId) => s.rooms.getForwardExtremities(roomId) },
    { name: 'current state', write: (s, roomId, fence, value) => s.rooms.setCurrentState(roomId, value, fence), read: async (s, roomId) => (await s.rooms.get(roomId))?.currentStateId },
    { name: 'joined servers', write: (s, roomId, fence, value) => s.rooms.setJoinedServers(roomId, [`${value}.test`], fence), read: (s, roomId) => s.rooms.getJoinedServers(roomId) },
    {
      name: 'end of partial state',
      write: (s, roomId, fence) => s.partialStateRooms.finish(roomId, fence),
      read: async (s, roomId) => (await s.partialStateRooms.get(roomId)) ?? null,
    },
  ];
  const partialOf = (roomId: string) => ({ roomId, joinEventId: '$join', serversInRoom: ['a.test'], resident: 'a.test', startedTs: 1 });
  let partition = 100;

  async function roomFor(kind: Kind, fenced: boolean): Promise<{ roomId: string; under: (epoch: number) => RoomWriteFence }> {
    const roomId = `!${randomBytes(6).toString('hex')}:crash.test`;
    const p = partition++;
    const under = (epoch: number) => ({ roomId, partition: p, epoch });
    await restarted.rooms.ensure({ roomId, roomVersion: '10', creator: '@c:crash.test', createdTs: 1 });
    await restarted.events.append({
      eventId: eventOf(roomId),
      roomId,
      type: 'm.room.message',
      depth: 1,
      prevEventIds: [],
      authEventIds: [],
      pdu: {} as never,
      status: 'accepted',
      outlier: false,
      receivedTs: 1,
    });
    await restarted.partialStateRooms.begin(partialOf(roomId));
    if (fenced) await kind.write(restarted, roomId, under(1), 'first');
    if (kind.name === 'end of partial state') await restarted.partialStateRooms.begin(partialOf(roomId));
    return { roomId, under };
  }

  it.each([
    ['a room fenced before', true],
    ['a room with no fence yet', false],
  ] as const)('dying between the two in %s: only the fence moved; the same owner again, or the next owner, writes it; an older owner is refused', async (_, fenced) => {
    for (const kind of kinds) {
      const { roomId, under } = await roomFor(kind, fenced);
      const before = await kind.read(restarted, roomId);
      crash.arm(2);
      await expect(kind.write(dying, roomId, under(2), 'again')).rejects.toThrow('simulated crash');
      expect({ kind: kind.name, writes: crash.log }).toEqual({ kind: kind.name, writes: ['roomCommits.updateOne', expect.any(String)] });
      expect({ kind: kind.name, after: await kind.read(restarted, roomId) }).toEqual({ kind: kind.name, after: before });
      expect(await restarted.pendingCommits.list(roomId)).toEqual([]);
      expect((await restarted.pendingCommits.list()).filter((c) => c.roomId === roomId)).toEqual([]);

      // The same holder after a restart (it still holds the lease, same epoch): the write goes through.
      await kind.write(restarted, roomId, under(2), 'again');
      const written = await kind.read(restarted, roomId);
      // An older holder is refused; the next owner takes the partition over and writes, and commits in the room.
      await expect(kind.write(restarted, roomId, under(1), 'stale')).rejects.toBeInstanceOf(RoomWriteFencedError);
      expect(await kind.read(restarted, roomId)).toEqual(written);
      await restarted.pendingCommits.raiseFence({ partition: under(3).partition, epoch: 3 });
      await expect(kind.write(restarted, roomId, under(2), 'stale')).rejects.toBeInstanceOf(RoomWriteFencedError);
      await kind.write(restarted, roomId, under(3), 'next');
      const commit = { eventId: `$commit-${roomId.slice(1, 9)}`, roomId, payload: {}, createdTs: 1 };
      await restarted.pendingCommits.add(commit, { partition: under(3).partition, epoch: 3 });
      expect((await restarted.pendingCommits.list(roomId)).map((c) => c.eventId)).toEqual([commit.eventId]);
      await restarted.pendingCommits.remove(commit.eventId, roomId);
    }
  });

  // The window docs/security.md named: the old owner past its fence check, paused before its write; the new owner
  // takes the partition over and makes the same write; the old write then landed over the new one.
  it.each(kinds.filter((k) => k.name !== 'end of partial state').map((k) => [k.name, k] as const))(
    'defect: a takeover between the two (%s): the old owner\'s write is refused once the new owner wrote the same data',
    async (_, kind) => {
      const { roomId, under } = await roomFor(kind, true);
      crash.arm(Infinity);
      const pause = crash.holdAt(2);
      const old = kind.write(dying, roomId, under(2), 'old');
      old.catch(() => undefined);
      await pause.reached;
      await restarted.pendingCommits.raiseFence({ partition: under(3).partition, epoch: 3 });
      await kind.write(restarted, roomId, under(3), 'new');
      const newOwners = await kind.read(restarted, roomId);
      pause.release();
      await expect(old).rejects.toBeInstanceOf(RoomWriteFencedError);
      expect(await kind.read(restarted, roomId)).toEqual(newOwners);
    },
  );
});

// The survey: the other methods that are more than one write here, each cut before every one of its writes, then
// what the service does after a restart. (Covered elsewhere: the AS transaction ack, "an AS transaction ack cut
// short" in mongo-store.medium.spec.ts; a commit's writes, state-resolver's commit-recovery-mongo-writes.medium.spec.ts.)
describe('other multi-write methods cut at every write (mongo, crash-gaps)', () => {
  async function atEveryWrite(probe: () => Promise<unknown>, cut: (dieAt: number, diedBefore: string) => Promise<void>): Promise<number> {
    const writes = await writesOf(probe);
    expect(writes.length).toBeGreaterThanOrEqual(2);
    for (let dieAt = 1; dieAt <= writes.length; dieAt++) await cut(dieAt, writes[dieAt - 1]!);
    return writes.length;
  }
  const die = async (run: () => Promise<unknown>, dieAt: number) => {
    crash.arm(dieAt);
    await expect(run()).rejects.toThrow('simulated crash');
  };

  it('device and cross-signing key changes: the retry and the finishing pass leave the change made, the stream moved and logged, no mark', async () => {
    const changes: Array<[string, (s: Store, user: string) => Promise<unknown>, (s: Store, user: string) => Promise<unknown>]> = [
      ['a new device', (s, user) => s.deviceKeys.putDevice(user, 'NEW', 'phone'), async (s, user) => (await s.deviceKeys.getDevice(user, 'NEW'))?.displayName],
      ['a rename', (s, user) => s.deviceKeys.putDevice(user, 'OLD', 'renamed'), async (s, user) => (await s.deviceKeys.getDevice(user, 'OLD'))?.displayName],
      ['new device keys', (s, user) => s.deviceKeys.setDeviceKeys(user, 'OLD', { user_id: user, device_id: 'OLD', keys: { 'ed25519:OLD': 'x' } } as never), async (s, user) => (await s.deviceKeys.getDevice(user, 'OLD'))?.keys],
      ['a deleted device', (s, user) => s.deviceKeys.deleteDevice(user, 'OLD'), async (s, user) => (await s.deviceKeys.listDevices(user)).map((d) => d.deviceId)],
      ['a cross-signing key', (s, user) => s.deviceKeys.setCrossSigningKey(user, 'master', { user_id: user, usage: ['master'], keys: { 'ed25519:m': 'm' } } as never), (s, user) => s.deviceKeys.crossSigningKeys(user)],
    ];
    for (const [name, change, read] of changes) {
      const fresh = async () => {
        const user = `@keys-${randomBytes(3).toString('hex')}:crash.test`;
        await restarted.deviceKeys.putDevice(user, 'OLD', 'old');
        return user;
      };
      const clean = await fresh();
      await change(restarted, clean);
      const norm = (value: unknown, user: string): unknown => JSON.parse(JSON.stringify(value ?? null).replaceAll(user, '@user')) as unknown;
      const wanted = norm(await read(restarted, clean), clean);
      const probeUser = await fresh();
      await atEveryWrite(
        () => change(dying, probeUser),
        async (dieAt, diedBefore) => {
          const user = await fresh();
          const streamBefore = await restarted.deviceKeys.deviceListStreamId(user);
          const logBefore = await restarted.deviceLists.latestPosition();
          await die(() => change(dying, user), dieAt);
          // The client retries; chat-sync's finishing pass runs on start and every minute.
          await change(restarted, user);
          await restarted.deviceKeys.finishPendingChanges(Date.now() + 1);
          const logged = (await restarted.deviceLists.changesSince(logBefore, 100_000)).filter((c) => c.userId === user);
          expect({ name, dieAt, diedBefore, now: norm(await read(restarted, user), user), moved: (await restarted.deviceKeys.deviceListStreamId(user)) > streamBefore, logged: logged.length > 0 }).toEqual({
            name,
            dieAt,
            diedBefore,
            now: wanted,
            moved: true,
            logged: true,
          });
          expect(await restarted.deviceKeys.finishPendingChanges(Date.now() + 1)).toBe(0);
        },
      );
    }
  });

  it('egress: beginning a transaction — a body only for the transaction in flight; the worker after a restart sends one transaction and nothing is left', async () => {
    const txn = (destination: string, txnId: string) => ({ destination, txnId, upTo: 2, body: { pdus: [txnId] }, createdTs: 1 });
    await atEveryWrite(
      () => dying.egressQueue.beginTransaction(txn(unique('probe.test'), 't1')),
      async (dieAt, diedBefore) => {
        const destination = unique(`begin-${dieAt}.test`);
        await die(() => dying.egressQueue.beginTransaction(txn(destination, 't1')), dieAt);
        const record = await restarted.destinations.get(destination);
        const saved = await restarted.egressQueue.getTransaction(destination, 't1');
        // No body without its transaction in flight (the orphan this defect left); in flight without one only when
        // it died right before saving it, so before anything was sent: the sender rebuilds it under the same ID.
        expect({ dieAt, diedBefore, orphan: saved !== undefined && record.inFlight?.txnId !== 't1' }).toEqual({ dieAt, diedBefore, orphan: false });
        if (record.inFlight && !saved) {
          expect(diedBefore).toBe('egressTransactions.updateOne');
          await restarted.egressQueue.saveTransaction(txn(destination, 't1'));
        }
        expect(await restarted.egressQueue.removeSettledTransactions(destination)).toBe(0);
        // The restarted worker proposes a transaction of its own (a new txnId) unless one is in flight; it sends and settles it.
        const inFlight = await restarted.egressQueue.beginTransaction(txn(destination, 't2'));
        expect(await restarted.egressQueue.getTransaction(destination, inFlight.txnId)).toBeDefined();
        await restarted.egressQueue.settleTransaction(destination, inFlight.txnId, inFlight.upTo, 3);
        expect(await restarted.egressQueue.destinationsWithWork()).not.toContain(destination);
      },
    );
  });

  it('egress: settling a transaction — what was sent is not sent again, nothing queued after it is dropped, no body left after the clean-up', async () => {
    await atEveryWrite(
      async () => {
        const destination = unique('probe.test');
        await dying.egressQueue.beginTransaction({ destination, txnId: 't1', upTo: 0, body: {}, createdTs: 1 });
        crash.arm(Infinity);
        await dying.egressQueue.settleTransaction(destination, 't1', 0, 5);
      },
      async (dieAt, diedBefore) => {
        const destination = unique(`settle-${dieAt}.test`);
        const first = await restarted.egressQueue.append(destination, 'a', { n: 'a' }, 1);
        const second = await restarted.egressQueue.append(destination, 'b', { n: 'b' }, 1);
        await restarted.egressQueue.beginTransaction({ destination, txnId: 't1', upTo: first.position, body: { pdus: ['a'] }, createdTs: 1 });
        await die(() => dying.egressQueue.settleTransaction(destination, 't1', first.position, 5), dieAt);
        // The restarted worker: a transaction still in flight is sent again under its txnId, then settled.
        const record = await restarted.destinations.get(destination);
        if (record.inFlight) {
          expect(record.inFlight.txnId).toBe('t1');
          expect(await restarted.egressQueue.removeSettledTransactions(destination)).toBe(0);
          expect(await restarted.egressQueue.getTransaction(destination, 't1')).toBeDefined();
          await restarted.egressQueue.settleTransaction(destination, 't1', first.position, 6);
        }
        const after = await restarted.destinations.get(destination);
        expect({ dieAt, diedBefore, inFlight: after.inFlight, cursor: after.cursor }).toEqual({ dieAt, diedBefore, inFlight: null, cursor: first.position });
        expect((await restarted.egressQueue.list(destination, after.cursor, 10)).map((i) => i.key)).toEqual(['b']);
        // The next transaction's settle removes what an earlier one cut short left behind.
        await restarted.egressQueue.beginTransaction({ destination, txnId: 't2', upTo: second.position, body: { pdus: ['b'] }, createdTs: 1 });
        await restarted.egressQueue.settleTransaction(destination, 't2', second.position, 7);
        expect(await restarted.egressQueue.count(destination, 0)).toBe(0);
        // Defect: a body cut before its delete stayed, naming the destination as having work on every start.
        await restarted.egressQueue.removeSettledTransactions(destination);
        expect({ dieAt, diedBefore, left: await restarted.egressQueue.getTransaction(destination, 't1'), named: (await restarted.egressQueue.destinationsWithWork()).includes(destination) }).toEqual({
          dieAt,
          diedBefore,
          left: undefined,
          named: false,
        });
      },
    );
  });

  it('egress: the clean-up run while another replica is paused before each write of its begin or settle never removes a body in flight or about to be', async () => {
    const txn = (destination: string, txnId: string, upTo: number) => ({ destination, txnId, upTo, body: { pdus: [txnId] }, createdTs: 1 });
    const begin = (s: Store, destination: string) => s.egressQueue.beginTransaction(txn(destination, 't1', 1));
    const settle = (s: Store, destination: string) => s.egressQueue.settleTransaction(destination, 't1', 1, 5);
    for (const [name, run, before] of [
      ['begin', begin, async () => undefined],
      ['settle', settle, (destination: string) => restarted.egressQueue.beginTransaction(txn(destination, 't1', 1))],
    ] as const) {
      const writes = await writesOf(async () => {
        const probe = unique('probe.test');
        await before(probe);
        crash.arm(Infinity);
        await run(dying, probe);
      });
      for (let at = 1; at <= writes.length; at++) {
        const destination = unique(`held-${name}-${at}.test`);
        await before(destination);
        crash.arm(Infinity);
        const pause = crash.holdAt(at);
        const paused = run(dying, destination);
        await pause.reached;
        await restarted.egressQueue.removeSettledTransactions(destination);
        pause.release();
        await paused;
        const inFlight = (await restarted.destinations.get(destination)).inFlight;
        expect({ name, at, heldBefore: writes[at - 1], inFlight: inFlight?.txnId ?? null, body: (await restarted.egressQueue.getTransaction(destination, 't1'))?.body ?? null }).toEqual({
          name,
          at,
          heldBefore: writes[at - 1],
          inFlight: name === 'begin' ? 't1' : null,
          body: name === 'begin' ? { pdus: ['t1'] } : null,
        });
      }
    }
  });

  it('AS queue: opening a transaction — the retry opens one, with the queued items', async () => {
    await atEveryWrite(
      async () => {
        const as = unique('probe');
        await restarted.appServiceQueue.enqueue(as, { itemId: '$p', kind: 'event', event: { event_id: '$p' } });
        crash.arm(Infinity);
        await dying.appServiceQueue.openTransaction(as, { maxEvents: 5, maxEphemeral: 5 });
      },
      async (dieAt) => {
        const as = unique(`open-${dieAt}`);
        await restarted.appServiceQueue.enqueue(as, { itemId: '$x', kind: 'event', event: { event_id: '$x' } });
        await die(() => dying.appServiceQueue.openTransaction(as, { maxEvents: 5, maxEphemeral: 5 }), dieAt);
        const txn = await restarted.appServiceQueue.openTransaction(as, { maxEvents: 5, maxEphemeral: 5 });
        expect(txn?.events).toEqual([{ event_id: '$x' }]);
        await restarted.appServiceQueue.ackTransaction(as, txn!.txnId);
        expect(await restarted.appServiceQueue.openTransaction(as, { maxEvents: 5, maxEphemeral: 5 })).toBeNull();
      },
    );
  });

  it('leases: acquiring with an epoch — the retry holds the lease under an epoch above every one handed out before', async () => {
    await atEveryWrite(
      async () => {
        const name = unique('probe-lease');
        await restarted.leases.acquireWithEpoch(name, 'other', 1, 1);
        crash.arm(Infinity);
        await dying.leases.acquireWithEpoch(name, 'me', 10_000, 10);
      },
      async (dieAt) => {
        const name = unique(`lease-${dieAt}`);
        const earlier = (await restarted.leases.acquireWithEpoch(name, 'other', 1, 1))!;
        await die(() => dying.leases.acquireWithEpoch(name, 'me', 10_000, 10), dieAt);
        const epoch = await restarted.leases.acquireWithEpoch(name, 'me', 10_000, 10);
        expect(epoch).toBeGreaterThan(earlier);
        expect((await restarted.leases.live(name, 10)).map((l) => l.holder)).toEqual(['me']);
      },
    );
  });
});
