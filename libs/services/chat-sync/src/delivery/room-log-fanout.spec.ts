import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { busTopology, type AppServicePush, type Bus, type JsonObject, type RoomLogEntry } from '@fedgate/bus';
import type { Pdu } from '@fedgate/protocol';
import { openSqliteStore, stateTupleKey, type EventStatus, type Store } from '@fedgate/store';
import { ApplicationServiceRegistry, type AppServiceRegistration } from '../registration';
import { fakeRegistration } from '../registration/fake-registration';
import { RoomLogFanout } from './room-log-fanout';

const server = 'hs.test';
const roomId = '!room:hs.test';

const registration = fakeRegistration('chat', 'http://chat.test', { namespaces: { users: [], aliases: [], rooms: [{ exclusive: false, regex: '!room:hs\\.test' }] } });

/** A bus that tells each push published, alone or in a batch. */
const publishingTo = (onPush: (push: AppServicePush) => void): Bus =>
  ({
    publish: async (_subject: string, push: AppServicePush) => void onPush(push),
    publishBatch: async (items: Array<{ data: AppServicePush }>) => void items.forEach((i) => onPush(i.data)),
  }) as unknown as Bus;

describe('RoomLogFanout: what reaches the application service', () => {
  let dir: string;
  let store: Store;
  let pushed: string[];
  let fanout: RoomLogFanout;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fedgate-fanout-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
    pushed = [];
    const bus = publishingTo((push) => pushed.push(push.eventId));
    fanout = new RoomLogFanout(store, bus, busTopology({ roomPartitions: 4 }), new ApplicationServiceRegistry([registration], server), server, pino({ level: 'silent' }));
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const pduOf = (type: string, content: Record<string, unknown>, extra: Record<string, unknown> = {}): Pdu =>
    ({ type, sender: '@mallory:remote.test', room_id: roomId, content, origin_server_ts: 1, depth: 1, prev_events: [], auth_events: [], hashes: { sha256: 'x' }, signatures: {}, ...extra }) as Pdu;

  async function stored(eventId: string, pdu: Pdu, status: EventStatus = 'accepted'): Promise<void> {
    await store.events.append({ eventId, roomId, type: pdu.type, stateKey: pdu.state_key as string | undefined, depth: 1, prevEventIds: [], authEventIds: [], pdu, status, outlier: false, receivedTs: 1 });
  }

  const entry = (eventId: string, pdu: Pdu, over: Partial<RoomLogEntry> = {}): RoomLogEntry => ({
    eventId,
    roomId,
    outcome: 'accepted',
    local: false,
    event: { ...pdu, event_id: eventId, room_id: roomId } as unknown as JsonObject,
    stateDelta: {},
    joinedServers: [],
    ...over,
  });

  // Issue 19: each event's push was its own bus publish (one SQLite commit per event in the embedded shape).
  describe('issue 19: a bus run of room log entries is published to the application service in one batch', () => {
    let publishes: string[][];
    beforeEach(() => {
      publishes = [];
      const bus = {
        publish: async (_subject: string, push: AppServicePush) => void publishes.push([push.eventId]),
        publishBatch: async (items: Array<{ data: AppServicePush }>) => void publishes.push(items.map((i) => i.data.eventId)),
      } as unknown as Bus;
      fanout = new RoomLogFanout(store, bus, busTopology({ roomPartitions: 4 }), new ApplicationServiceRegistry([registration], server), server, pino({ level: 'silent' }));
    });

    it('holds the pushes of entries with more of the run in hand and publishes them with the run’s last, in order', async () => {
      const message = (n: number) => entry(`$m${n}`, pduOf('m.room.message', { body: `${n}` }));
      for (const n of [0, 1, 2]) await fanout.handle(message(n), { moreInHand: true });
      expect(publishes).toEqual([]);
      await fanout.handle(message(3), { moreInHand: false });
      expect(publishes).toEqual([['$m0', '$m1', '$m2', '$m3']]);
      await fanout.handle(message(4));
      expect(publishes).toEqual([['$m0', '$m1', '$m2', '$m3'], ['$m4']]);
    });

    it('a run cut short: what it held goes out at flush (the bus awaits it before settling), and a failed publish keeps it for the next', async () => {
      let failing = true;
      const published: string[] = [];
      const bus = {
        publish: async () => undefined,
        publishBatch: async (items: Array<{ data: AppServicePush }>) => {
          if (failing) throw new Error('bus down');
          published.push(...items.map((i) => i.data.eventId));
        },
      } as unknown as Bus;
      fanout = new RoomLogFanout(store, bus, busTopology({ roomPartitions: 4 }), new ApplicationServiceRegistry([registration], server), server, pino({ level: 'silent' }));
      await fanout.handle(entry('$a', pduOf('m.room.message', { body: 'a' })), { moreInHand: true });
      await fanout.handle(entry('$b', pduOf('m.room.message', { body: 'b' })), { moreInHand: true });
      await expect(fanout.flush()).rejects.toThrow('bus down');
      failing = false;
      await fanout.flush();
      expect(published).toEqual(['$a', '$b']);
    });
  });

  describe('redactions are pushed only once applied (issue 10, defect 5)', () => {
    it('holds back a redaction the room log says did not apply (its sender may not redact the target)', async () => {
      const redaction = pduOf('m.room.redaction', { redacts: '$target' });
      await fanout.handle(entry('$redaction', redaction, { redactionsApplied: [] }));
      expect(pushed).toEqual([]);
    });

    it('pushes a redaction that applied', async () => {
      const redaction = pduOf('m.room.redaction', { redacts: '$target' });
      await fanout.handle(entry('$redaction', redaction, { redactionsApplied: ['$redaction'] }));
      expect(pushed).toEqual(['$redaction']);
    });

    it('releases a held-back redaction right after its target, once the target came and the redaction applied', async () => {
      const redaction = pduOf('m.room.redaction', { redacts: '$target' });
      await stored('$redaction', redaction);
      await fanout.handle(entry('$redaction', redaction, { redactionsApplied: [] }));
      await fanout.handle(entry('$target', pduOf('m.room.message', { body: 'hi' }), { redactionsApplied: ['$redaction'] }));
      expect(pushed).toEqual(['$target', '$redaction']);
    });

    it('checks the store for an entry that does not say (from before the field): unapplied stays back', async () => {
      await stored('$target', pduOf('m.room.message', { body: 'hi' }));
      await fanout.handle(entry('$redaction', pduOf('m.room.redaction', {}, { redacts: '$target' })));
      expect(pushed).toEqual([]);
    });
  });

  it('pushes a soft-failed state event when a later event brings it into current state (issue 10, defect 11)', async () => {
    const topic = pduOf('m.room.topic', { topic: 'from the other branch' }, { state_key: '' });
    await stored('$soft', topic, 'soft_failed');
    await fanout.handle(entry('$soft', topic, { outcome: 'soft-failed' }));
    expect(pushed).toEqual([]);
    const merge = pduOf('m.room.message', { body: 'merges both branches' });
    await fanout.handle(entry('$merge', merge, { stateDelta: { 'm.room.topic\u0000': '$soft' } }));
    expect(pushed).toEqual(['$soft', '$merge']);
  });

  it('records a membership only for a user ID of ours by the grammar: a remote member event for "@x:evil.test:hs.test" is not one of our users (review5)', async () => {
    const member = (userId: string): Pdu => pduOf('m.room.member', { membership: 'join' }, { sender: userId, state_key: userId });
    await fanout.handle(entry('$forged', member('@x:evil.test:hs.test')));
    await fanout.handle(entry('$ours', member('@alice:hs.test')));
    expect(await store.memberships.roomsOf('@x:evil.test:hs.test', 'join')).toEqual([]);
    expect(await store.memberships.roomsOf('@alice:hs.test', 'join')).toEqual([roomId]);
  });

  describe('issue 19: the joined members deciding interest are read once per state change, not per event', () => {
    const bridgeUsers: AppServiceRegistration = { ...registration, id: 'users', namespaces: { users: [{ exclusive: true, regex: '@_chat_.*:hs\\.test' }], aliases: [], rooms: [] } };
    const member = (userId: string, membership: string): Pdu => pduOf('m.room.member', { membership }, { sender: userId, state_key: userId });

    async function withState(members: Record<string, string>): Promise<void> {
      const state = new Map(Object.entries(members).map(([userId, eventId]) => [stateTupleKey('m.room.member', userId), eventId]));
      await store.rooms.setCurrentState(roomId, await store.state.save(roomId, state));
    }

    it('loads the state once for many messages, and again when membership changed (a member who left is no longer the reason to push)', async () => {
      const loads = { state: 0, events: 0 };
      const counted = new Proxy(store, {
        get(target, key) {
          const value = Reflect.get(target, key, target) as unknown;
          if (key === 'state') return { ...target.state, load: (id: string) => (loads.state++, target.state.load(id)) };
          if (key === 'events') return { ...target.events, get: target.events.get.bind(target.events), getMany: (ids: string[]) => (loads.events++, target.events.getMany(ids)) };
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const bus = publishingTo((push) => pushed.push(push.eventId));
      fanout = new RoomLogFanout(counted, bus, busTopology({ roomPartitions: 4 }), new ApplicationServiceRegistry([bridgeUsers], server), server, pino({ level: 'silent' }));
      await store.rooms.ensure({ roomId, roomVersion: '10', creator: '@_chat_a:hs.test', createdTs: 1 });
      await stored('$join-a', member('@_chat_a:hs.test', 'join'));
      await stored('$join-bob', member('@bob:remote.test', 'join'));
      await withState({ '@_chat_a:hs.test': '$join-a', '@bob:remote.test': '$join-bob' });

      for (let i = 0; i < 20; i++) await fanout.handle(entry(`$m${i}`, pduOf('m.room.message', { body: `${i}` }, { sender: '@bob:remote.test' })));
      expect(pushed).toHaveLength(20);
      // Before: one state load and one read of every state event per message (20 and 20).
      expect(loads).toEqual({ state: 1, events: 1 });

      await stored('$leave-a', member('@_chat_a:hs.test', 'leave'));
      await withState({ '@_chat_a:hs.test': '$leave-a', '@bob:remote.test': '$join-bob' });
      await fanout.handle(entry('$after-leave', pduOf('m.room.message', { body: 'nobody of the bridge is here' }, { sender: '@bob:remote.test' })));
      expect(pushed).not.toContain('$after-leave');
      expect(loads).toEqual({ state: 2, events: 2 });
    });

    // Issue 19 (commit-cpu): the room record (its current-state snapshot) was read for every event; every entry of a run
    // was committed before the bus handed the run over, so one read per room and run holds them all.
    it('reads the room once per run of the room log (every entry of a run was committed before it), again in the next run', async () => {
      let roomReads = 0;
      const counted = new Proxy(store, {
        get(target, key) {
          const value = Reflect.get(target, key, target) as unknown;
          if (key === 'rooms') return { ...target.rooms, get: (id: string) => (roomReads++, target.rooms.get(id)) };
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      fanout = new RoomLogFanout(counted, publishingTo((push) => pushed.push(push.eventId)), busTopology({ roomPartitions: 4 }), new ApplicationServiceRegistry([bridgeUsers], server), server, pino({ level: 'silent' }));
      await store.rooms.ensure({ roomId, roomVersion: '10', creator: '@_chat_a:hs.test', createdTs: 1 });
      await stored('$join-a', member('@_chat_a:hs.test', 'join'));
      await stored('$join-bob', member('@bob:remote.test', 'join'));
      await withState({ '@_chat_a:hs.test': '$join-a', '@bob:remote.test': '$join-bob' });

      const message = (id: string) => entry(id, pduOf('m.room.message', { body: id }, { sender: '@bob:remote.test' }));
      for (let i = 0; i < 10; i++) await fanout.handle(message(`$run1-${i}`), { moreInHand: i < 9 });
      expect(pushed).toHaveLength(10);
      // Before: one room read per entry (10).
      expect(roomReads).toBe(1);

      // The next run reads it again: the bridge's user left in between, and nothing of the next run is pushed.
      await stored('$leave-a', member('@_chat_a:hs.test', 'leave'));
      await withState({ '@_chat_a:hs.test': '$leave-a', '@bob:remote.test': '$join-bob' });
      for (let i = 0; i < 3; i++) await fanout.handle(message(`$run2-${i}`), { moreInHand: i < 2 });
      expect(roomReads).toBe(2);
      expect(pushed).toHaveLength(10);
      // Without runs (JetStream hands over one message at a time): a read per entry, as before.
      for (let i = 0; i < 3; i++) await fanout.handle(message(`$alone-${i}`));
      expect(roomReads).toBe(5);
    });
  });
  describe('issue 19: a room\'s aliases are read only when they could decide interest (a collection scan per event on FerretDB)', () => {
    const aliasNamespaced: AppServiceRegistration = { ...registration, id: 'aliases', asToken: 'as-aliases', hsToken: 'hs-aliases', senderLocalpart: 'aliasbot', source: 'aliases.yaml', namespaces: { users: [], aliases: [{ exclusive: false, regex: '#chat_.*:hs\\.test' }], rooms: [] } };
    let aliasReads: number;
    let published: string[];

    function fanoutCountingAliasReads(registrations: AppServiceRegistration[]): void {
      aliasReads = 0;
      published = [];
      const counted = new Proxy(store, {
        get(target, key) {
          const value = Reflect.get(target, key, target) as unknown;
          if (key === 'aliases') return { ...target.aliases, forRoom: (id: string) => (aliasReads++, target.aliases.forRoom(id)) };
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const bus = publishingTo((push) => published.push(`${push.appserviceId}:${push.eventId}`));
      fanout = new RoomLogFanout(counted, bus, busTopology({ roomPartitions: 4 }), new ApplicationServiceRegistry(registrations, server), server, pino({ level: 'silent' }));
    }

    it('does not read them when every service with an alias namespace is interested already, or none has one', async () => {
      fanoutCountingAliasReads([registration]);
      for (let i = 0; i < 5; i++) await fanout.handle(entry(`$m${i}`, pduOf('m.room.message', { body: `${i}` })));
      expect(published).toHaveLength(5);
      // Before: one read per event (5).
      expect(aliasReads).toBe(0);
    });

    it('reads them when a service could be interested only through an alias, and pushes to it on a match', async () => {
      await store.aliases.create({ alias: '#chat_room:hs.test', roomId, servers: [server], creator: '@admin:hs.test', createdTs: 1 });
      fanoutCountingAliasReads([registration, aliasNamespaced]);
      await fanout.handle(entry('$m', pduOf('m.room.message', { body: 'hi' })));
      expect(published).toEqual(['chat:$m', 'aliases:$m']);
      expect(aliasReads).toBe(1);
    });
  });
});
