// Issue 19 (distributed): the owner's read cache must never answer from a holding of the partition that ended.
// Two replicas' caches over one real store; each replica's holding of the room's partition set by the test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ElasticOwnership } from '@fedgate/platform';
import { stateMapKey } from '@fedgate/room-state';
import { openSqliteStore, RoomWriteFencedError, type EventRecord, type Store } from '@fedgate/store';
import pino from 'pino';
import { OwnedRoomCache } from './owned-room-cache';
import { StateResolver } from './state-resolver';
import { TestNetwork, type TestServer } from './testing/test-server';

const ROOM = '!cached:gw.test';

const eventRecord = (eventId: string, roomId = ROOM): EventRecord => ({
  eventId,
  roomId,
  type: 'm.room.message',
  depth: 1,
  prevEventIds: [],
  authEventIds: [],
  pdu: { type: 'm.room.message', room_id: roomId, sender: '@a:remote.test', content: { body: eventId } } as never,
  status: 'accepted',
  outlier: false,
  receivedTs: 1,
});

/** A repository with some methods replaced (the others bound to it: they live on its prototype). */
function overriding<T extends object>(repo: T, overrides: Partial<T>): T {
  return new Proxy(repo, {
    get: (target, key) => {
      if (key in overrides) return overrides[key as keyof T];
      const value = Reflect.get(target, key) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A store counting the reads the cache should save. */
function counting(store: Store): { store: Store; reads: string[] } {
  const reads: string[] = [];
  const count = <T extends object>(name: string, repo: T, methods: Array<keyof T>): T => {
    return new Proxy(repo, {
      get: (target, key) => {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== 'function') return value;
        const fn = (value as (...args: unknown[]) => unknown).bind(target);
        if (!methods.includes(key as keyof T)) return fn;
        return (...args: unknown[]) => {
          reads.push(`${name}.${String(key)}`);
          return fn(...args);
        };
      },
    });
  };
  return {
    reads,
    store: {
      ...store,
      rooms: count('rooms', store.rooms, ['get', 'getForwardExtremities', 'getJoinedServers', 'ensure', 'setCurrentState', 'updateForwardExtremities', 'setJoinedServers', 'updateJoinedServers', 'roomsOfServer']),
      events: count('events', store.events, ['get', 'getMany', 'append', 'appendMany', 'setOutcome', 'missing', 'byDepthRange', 'byStatus']),
      partialStateRooms: count('partialStateRooms', store.partialStateRooms, ['get', 'begin', 'finish', 'list']),
      state: count('state', store.state, ['getForEvent', 'setForEvent', 'load', 'save', 'derive', 'stateAfterEvent', 'stateBeforeEvent']),
    },
  };
}

describe('the owned-room read cache (issue 19, distributed): answers only under the lease holding it was filled in', () => {
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'owned-room-cache-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    await store.rooms.ensure({ roomId: ROOM, roomVersion: '12', creator: '@a:gw.test', createdTs: 1 });
    await store.rooms.updateForwardExtremities(ROOM, { add: ['$one'], remove: [] });
    await store.rooms.setJoinedServers(ROOM, ['gw.test']);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers its own writes and reads from memory while the lease is held (no store read the second time)', async () => {
    const counted = counting(store);
    const cached = new OwnedRoomCache(() => 1).wrap(counted.store);
    await cached.rooms.get(ROOM);
    await cached.rooms.getForwardExtremities(ROOM);
    await cached.rooms.getJoinedServers(ROOM);
    await cached.partialStateRooms.get(ROOM);
    await cached.events.append(eventRecord('$two'));
    await cached.rooms.updateForwardExtremities(ROOM, { add: ['$two'], remove: ['$one'] });
    await cached.rooms.setCurrentState(ROOM, 'snapshot-2');
    counted.reads.length = 0;

    expect(await cached.rooms.get(ROOM)).toMatchObject({ roomId: ROOM, currentStateId: 'snapshot-2' });
    expect(await cached.rooms.getForwardExtremities(ROOM)).toEqual(['$two']);
    expect(await cached.rooms.getJoinedServers(ROOM)).toEqual(['gw.test']);
    expect(await cached.partialStateRooms.get(ROOM)).toBeUndefined();
    expect((await cached.events.getMany(['$two'])).get('$two')).toMatchObject({ eventId: '$two', roomId: ROOM });
    expect(counted.reads).toEqual([]);
    // And what it answers is what the store holds.
    expect(await store.rooms.getForwardExtremities(ROOM)).toEqual(['$two']);
    expect((await store.rooms.get(ROOM))?.currentStateId).toBe('snapshot-2');
  });

  it('lease moves A→B, B writes, A gets it back: A answers what B wrote, not what it had cached (new epoch)', async () => {
    let aHolds: number | undefined = 1;
    let bHolds: number | undefined;
    const a = new OwnedRoomCache(() => aHolds).wrap(store);
    const b = new OwnedRoomCache(() => bHolds).wrap(store);
    // A fills its cache under epoch 1.
    expect(await a.rooms.getForwardExtremities(ROOM)).toEqual(['$one']);
    expect(await a.rooms.getJoinedServers(ROOM)).toEqual(['gw.test']);
    expect((await a.rooms.get(ROOM))?.currentStateId).toBeNull();
    expect(await a.partialStateRooms.get(ROOM)).toBeUndefined();
    await a.events.append(eventRecord('$mine'));
    expect((await a.events.get('$mine'))?.status).toBe('accepted');

    // The partition moves to B (epoch 2), which writes the room.
    aHolds = undefined;
    bHolds = 2;
    await b.rooms.updateForwardExtremities(ROOM, { add: ['$b'], remove: ['$one'] });
    await b.rooms.setJoinedServers(ROOM, ['gw.test', 'other.test']);
    await b.rooms.setCurrentState(ROOM, 'snapshot-b');
    await b.partialStateRooms.begin({ roomId: ROOM, joinEventId: '$join', serversInRoom: ['other.test'], resident: 'other.test', startedTs: 1 });
    await b.events.setOutcome('$mine', { status: 'soft_failed', reason: 'by b', outlier: false });
    // While A does not hold it, A reads the store.
    expect(await a.rooms.getForwardExtremities(ROOM)).toEqual(['$b']);

    // A gets it back under a new epoch, without having been told of the handover: still nothing stale.
    bHolds = undefined;
    aHolds = 3;
    expect(await a.rooms.getForwardExtremities(ROOM)).toEqual(['$b']);
    expect(await a.rooms.getJoinedServers(ROOM)).toEqual(['gw.test', 'other.test']);
    expect((await a.rooms.get(ROOM))?.currentStateId).toBe('snapshot-b');
    expect(await a.partialStateRooms.get(ROOM)).toMatchObject({ joinEventId: '$join' });
    expect(await a.events.get('$mine')).toMatchObject({ status: 'soft_failed', reason: 'by b' });
  });

  it('a lease that went stale (not yet lost) is not answered from: reads go to the store until it is fresh again', async () => {
    let aHolds: number | undefined = 1;
    const counted = counting(store);
    const a = new OwnedRoomCache(() => aHolds).wrap(counted.store);
    await a.rooms.getForwardExtremities(ROOM);
    aHolds = undefined;
    counted.reads.length = 0;
    await a.rooms.getForwardExtremities(ROOM);
    expect(counted.reads).toEqual(['rooms.getForwardExtremities']);
  });

  it("hands a resync write's fence on to the store (resync-store-fence): each stale one is refused there, nothing cached of it", async () => {
    const cached = new OwnedRoomCache(() => 1).wrap(store);
    await cached.events.append(eventRecord('$fenced'));
    await cached.partialStateRooms.begin({ roomId: ROOM, joinEventId: '$fenced', serversInRoom: ['other.test'], resident: 'other.test', startedTs: 1 });
    await cached.rooms.setCurrentState(ROOM, 'current', { roomId: ROOM, partition: 1, epoch: 5 });
    await store.pendingCommits.raiseFence({ partition: 1, epoch: 6 });
    const stale = { roomId: ROOM, partition: 1, epoch: 5 };
    for (const write of [
      () => cached.events.setOutcome('$fenced', { status: 'rejected', outlier: false }, stale),
      () => cached.state.setForEvent('$fenced', { before: 'b', after: 'a' }, stale),
      () => cached.rooms.setCurrentState(ROOM, 'stale', stale),
      () => cached.rooms.updateForwardExtremities(ROOM, { add: ['$fenced'], remove: ['$one'] }, stale),
      () => cached.rooms.setJoinedServers(ROOM, ['stale.test'], stale),
      () => cached.partialStateRooms.finish(ROOM, stale),
    ]) {
      await expect(write()).rejects.toBeInstanceOf(RoomWriteFencedError);
    }
    expect((await cached.events.get('$fenced'))?.status).toBe('accepted');
    expect((await cached.rooms.get(ROOM))?.currentStateId).toBe('current');
    expect(await cached.rooms.getForwardExtremities(ROOM)).toEqual(['$one']);
    expect(await cached.rooms.getJoinedServers(ROOM)).toEqual(['gw.test']);
    expect(await cached.partialStateRooms.get(ROOM)).toMatchObject({ joinEventId: '$fenced' });
  });

  it('a write that fails leaves nothing cached of the room (the store may hold it or not)', async () => {
    const failing: Store = { ...store, rooms: overriding(store.rooms, { setCurrentState: async () => Promise.reject(new Error('store away')) }) };
    const counted = counting(failing);
    const a = new OwnedRoomCache(() => 1).wrap(counted.store);
    await a.rooms.get(ROOM);
    await expect(a.rooms.setCurrentState(ROOM, 'lost')).rejects.toThrow('store away');
    counted.reads.length = 0;
    await a.rooms.get(ROOM);
    expect(counted.reads).toEqual(['rooms.get']);
  });

  it('a run of commits written in one transaction (commits.writeAll) is remembered like single commits, not a reason to forget everything', async () => {
    const counted = counting(store);
    const cached = new OwnedRoomCache(() => 1).wrap(counted.store);
    await cached.rooms.get(ROOM);
    await cached.rooms.getForwardExtremities(ROOM);
    const refs = { before: 'snapshot-1', after: 'snapshot-1' } as never;
    await cached.commits.writeAll([
      { stateRefs: refs, event: eventRecord('$two'), forwardExtremities: { add: ['$two'], remove: ['$one'] } },
      { stateRefs: refs, event: eventRecord('$three'), forwardExtremities: { add: ['$three'], remove: ['$two'] }, currentStateId: 'snapshot-3' },
    ]);
    counted.reads.length = 0;

    expect(await cached.rooms.getForwardExtremities(ROOM)).toEqual(['$three']);
    expect((await cached.rooms.get(ROOM))?.currentStateId).toBe('snapshot-3');
    expect((await cached.events.getMany(['$two', '$three'])).size).toBe(2);
    expect(counted.reads).toEqual([]);
    expect(await store.rooms.getForwardExtremities(ROOM)).toEqual(['$three']);
  });

  it('a write method it was not taught about (added to a port later) forgets what it holds: never a stale answer', async () => {
    const extended = Object.assign(Object.create(store.rooms) as Store['rooms'], {
      moveEverything: (roomId: string) => store.rooms.updateForwardExtremities(roomId, { add: ['$moved'], remove: ['$one'] }),
    });
    const a = new OwnedRoomCache(() => 1).wrap({ ...store, rooms: extended });
    expect(await a.rooms.getForwardExtremities(ROOM)).toEqual(['$one']);
    await (a.rooms as unknown as { moveEverything(roomId: string): Promise<void> }).moveEverything(ROOM);
    expect(await a.rooms.getForwardExtremities(ROOM)).toEqual(['$moved']);
  });

  it('a read that raced a write of the same room does not fill the cache with what it read before the write', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow: Store = {
      ...store,
      rooms: overriding(store.rooms, {
        getForwardExtremities: async (roomId: string) => {
          const before = await store.rooms.getForwardExtremities(roomId);
          await gate;
          return before;
        },
      }),
    };
    const a = new OwnedRoomCache(() => 1).wrap(slow);
    const racing = a.rooms.getForwardExtremities(ROOM);
    await new Promise((resolve) => setImmediate(resolve));
    await a.rooms.updateForwardExtremities(ROOM, { add: ['$later'], remove: ['$one'] });
    release();
    expect(await racing).toEqual(['$one']);
    expect(await a.rooms.getForwardExtremities(ROOM)).toEqual(['$later']);
  });
});

describe('the sole writer\'s read cache (issue 19, commit-cpu): events the store does not hold, remembered absent', () => {
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'owned-room-cache-sole-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    await store.rooms.ensure({ roomId: ROOM, roomVersion: '12', creator: '@a:gw.test', createdTs: 1 });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const commitOf = (record: EventRecord) => ({ stateRefs: { before: 's0', after: 's0' }, event: record });

  it('an event the store does not hold is asked of the store once; every way of writing it makes the next read answer what was written', async () => {
    const counted = counting(store);
    const cached = new OwnedRoomCache(() => 0, undefined, true).wrap(counted.store);
    expect(await cached.events.get('$new')).toBeUndefined();
    expect(counted.reads).toEqual(['events.getMany']);
    expect(await cached.events.get('$new')).toBeUndefined();
    expect((await cached.events.getMany(['$new', '$other'])).size).toBe(0);
    // Only the event not asked before went to the store.
    expect(counted.reads).toEqual(['events.getMany', 'events.getMany']);

    // Written by a commit (the inbound path): remembered as written.
    await cached.commits.writeAll([commitOf(eventRecord('$new'))]);
    expect((await cached.events.get('$new'))?.eventId).toBe('$new');
    // Written as an outlier, then its outcome set: each read after a write answers what the store holds.
    expect(await cached.events.get('$outlier')).toBeUndefined();
    await cached.events.append({ ...eventRecord('$outlier'), outlier: true });
    expect((await cached.events.get('$outlier'))?.outlier).toBe(true);
    await cached.events.setOutcome('$outlier', { status: 'rejected', reason: 'test', outlier: false });
    expect(await cached.events.get('$outlier')).toMatchObject({ status: 'rejected', reason: 'test', outlier: false });
    expect(await cached.events.get('$many')).toBeUndefined();
    await cached.events.appendMany([eventRecord('$many')]);
    expect((await cached.events.get('$many'))?.eventId).toBe('$many');
  });

  it('a commit that fails forgets the absence it had (the store may hold the event or not)', async () => {
    const failing: Store = { ...store, commits: { write: () => Promise.reject(new Error('out')), writeAll: () => Promise.reject(new Error('out')) } };
    const counted = counting(failing);
    const cached = new OwnedRoomCache(() => 0, undefined, true).wrap(counted.store);
    expect(await cached.events.get('$lost')).toBeUndefined();
    await expect(cached.commits.writeAll([commitOf(eventRecord('$lost'))])).rejects.toThrow('out');
    counted.reads.length = 0;
    await cached.events.get('$lost');
    expect(counted.reads).toEqual(['events.getMany']);
  });

  it('a distributed owner (elastic) never remembers an absence: another replica may write the event', async () => {
    const counted = counting(store);
    const cached = new OwnedRoomCache(() => 1).wrap(counted.store);
    await cached.events.get('$new');
    await cached.events.get('$new');
    expect(counted.reads).toEqual(['events.getMany', 'events.getMany']);
  });

  it('hands out copies made in this realm (canonical JSON takes them as plain objects), a content key "__proto__" kept as data', async () => {
    const cached = new OwnedRoomCache(() => 0, undefined, true).wrap(store);
    const record = eventRecord('$proto');
    (record.pdu as { content: Record<string, unknown> }).content = JSON.parse('{"__proto__":{"polluted":true},"body":"x"}') as Record<string, unknown>;
    await cached.commits.writeAll([commitOf(record)]);
    const first = (await cached.events.get('$proto'))!;
    const content = (first.pdu as { content: Record<string, unknown> }).content;
    expect(Object.getPrototypeOf(first.pdu)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(content)).toBe(Object.prototype);
    expect(Object.keys(content)).toEqual(['__proto__', 'body']);
    expect((content as { polluted?: unknown }).polluted).toBeUndefined();
    // A caller changing its copy changes nobody else's.
    content.body = 'changed';
    expect(((await cached.events.get('$proto'))!.pdu as { content: Record<string, unknown> }).content.body).toBe('x');
  });
});

describe('elastic state-resolver replicas with the owned-room cache (issue 19): a lease handed back and forth', () => {
  const TTL_MS = 5_000;
  const alice = '@alice:a.test';
  let network: TestNetwork;
  let gw: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    gw = await network.add('a.test');
  });
  afterEach(() => network.close());

  function replica(instanceId: string, clock: { now: number }): StateResolver {
    const elastic: ElasticOwnership = { leases: gw.store.leases, scope: 'test/state-resolver', instanceId, ttlMs: TTL_MS, logger: pino({ level: 'silent' }), now: () => clock.now };
    return gw.offlineProcess(network, { elastic });
  }
  const rebalance = (r: StateResolver) => (r as unknown as { ownership: { rebalance(): Promise<void> } }).ownership.rebalance();

  it('A writes, B takes the partition and writes, A takes it back: A builds on B\'s event and sees B\'s state', async () => {
    const roomId = await gw.createRoom(alice);
    const aClock = { now: 10_000_000 };
    const bClock = { now: aClock.now + 2 * TTL_MS };
    const a = replica('sr-a', aClock);
    const b = replica('sr-b', bClock);
    await a.start();
    try {
      const first = await a.localEvents.create({ roomId, sender: alice, type: 'm.room.topic', stateKey: '', content: { topic: 'by A' }, txnId: 'a-1' });
      expect((await a.reader.currentState(roomId))?.size).toBeGreaterThan(0);

      // A stalls past its leases; B takes the partition over and writes in the room.
      await b.start();
      expect(b.ownedPartitions()).toContain(gw.topology.roomLog.partitionOf(roomId));
      const byB = await b.localEvents.create({ roomId, sender: alice, type: 'm.room.topic', stateKey: '', content: { topic: 'by B' }, txnId: 'b-1' });
      await b.stop();

      // A wakes after B's leases ran out too, and takes the partition back.
      aClock.now = bClock.now + 2 * TTL_MS;
      await rebalance(a);
      expect(a.ownedPartitions()).toContain(gw.topology.roomLog.partitionOf(roomId));
      const again = await a.localEvents.create({ roomId, sender: alice, type: 'm.room.message', content: { body: 'after' }, txnId: 'a-2' });
      const stored = (await gw.store.events.get(again.eventId))!;
      expect(stored.prevEventIds).toEqual([byB.eventId]);
      expect(stored.prevEventIds).not.toContain(first.eventId);
      expect(await gw.store.rooms.getForwardExtremities(roomId)).toEqual([again.eventId]);
      const topic = (await a.reader.currentState(roomId))!.get(stateMapKey('m.room.topic', ''));
      expect(topic).toBe(byB.eventId);
    } finally {
      await b.stop().catch(() => undefined);
      await a.stop();
    }
  });
});
