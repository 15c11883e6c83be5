// as-lag (issue 19, distributed: events handled by the state-resolver reached the AS late or not at all). With
// elastic replicas, chat-sync reads a room-log partition only while its lease is fresh. Under load a renewal
// slower than that margin left the lease stale for a moment: the room log answered nak (a second per delivery,
// each one spent of ten; the tenth dead-lettered the entry, never pushed). Now a stale lease is waited out.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { busOptionsFor, busTopology, EmbeddedBus, type Bus, type JsonObject, type MessageHandler, type RoomLogEntry } from '@fedgate/bus';
import type { FedgateConfig } from '@fedgate/config';
import type { PartitionOwnership, ServerIdentity } from '@fedgate/platform';
import { openSqliteStore, type Store } from '@fedgate/store';
import { ApplicationServiceRegistry } from '../registration';
import { fakeRegistration } from '../registration/fake-registration';
import { ChatSyncWorkers } from './chat-sync-workers';

const server = 'hs.test';
const roomId = '!room:hs.test';
// No URL: no pusher, no AS lease; what the room log hands on is seen on the bus.
const registration = fakeRegistration('chat', null, { namespaces: { users: [], aliases: [], rooms: [{ exclusive: false, regex: '!room:hs\\.test' }] } });

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
};

describe('chat-sync room log with a lease stale for a moment (as-lag)', () => {
  let dir: string;
  let store: Store;
  let bus: EmbeddedBus;
  let workers: ChatSyncWorkers;

  afterEach(async () => {
    await workers?.onApplicationShutdown();
    await bus?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an entry delivered while the lease is stale is handled once the lease is renewed, not naked', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fedgate-stale-lease-'));
    const topology = busTopology({ prefix: 'stale', roomPartitions: 2 });
    store = openSqliteStore(path.join(dir, 'store.db'));
    // Renewals held back on demand: a store too slow to renew within the margin.
    const renewals: { held?: Promise<void>; release: () => void } = { release: () => undefined };
    const leases = store.leases;
    const slowLeases = new Proxy(leases, {
      get(target, key) {
        if (key === 'renewMany') return async (...args: Parameters<typeof leases.renewMany>) => (await renewals.held, target.renewMany(...args));
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const slowStore = new Proxy(store, {
      get(target, key) {
        if (key === 'leases') return slowLeases;
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.db'), pollIntervalMs: 20 });
    await bus.start();
    // What the room-log handler answered, per delivery; and what it handed on to the AS's subject.
    const roomLogOutcomes: string[] = [];
    let roomLogEntered = 0;
    const handedOn: string[] = [];
    const watchedBus = new Proxy(bus, {
      get(target, key) {
        if (key === 'consume')
          return async (consumer: { durable: string }, handler: MessageHandler<unknown>) =>
            target.consume(consumer as never, async (message) => {
              if (consumer.durable.includes('chat-sync-room-log')) roomLogEntered++;
              const outcome = await handler(message);
              if (consumer.durable.includes('chat-sync-room-log')) roomLogOutcomes.push(`delivery ${message.deliveryCount}: ${outcome?.kind ?? 'ack'}`);
              return outcome;
            });
        if (key === 'publish')
          return async (subject: string, data: { eventId?: string }, options?: unknown) => {
            if (subject.startsWith(`${topology.prefix}.appservice`)) handedOn.push(data.eventId ?? '?');
            return target.publish(subject as never, data as never, options as never);
          };
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as unknown as Bus;
    const config = { bus: { prefix: 'stale' }, replicas: { ownership: 'leases', leaseTtlMs: 600, chatSync: { index: 0, count: 1 } } } as unknown as FedgateConfig;
    const identity = { serverName: server } as ServerIdentity;
    workers = new ChatSyncWorkers(slowStore, watchedBus, topology, identity, new ApplicationServiceRegistry([registration], server), pino({ level: 'silent' }), null, null, config, null);
    await workers.onApplicationBootstrap();
    const ownership = (workers as unknown as { ownership: PartitionOwnership }).ownership;
    const partition = topology.roomLog.partitionOf(roomId);
    expect(ownership.owns(partition)).toBe(true);

    renewals.held = new Promise((resolve) => (renewals.release = resolve));
    await until(() => !ownership.owns(partition));
    const entry: RoomLogEntry = {
      eventId: '$m',
      roomId,
      outcome: 'accepted',
      local: false,
      event: { type: 'm.room.message', sender: '@mallory:remote.test', room_id: roomId, content: { body: 'hi' }, event_id: '$m' } as JsonObject,
      stateDelta: {},
      joinedServers: [],
    };
    await bus.publish(topology.roomLog.partition(partition), entry, { messageId: '$m' });
    // Delivered while stale; the renewal then comes through.
    await until(() => roomLogEntered > 0);
    renewals.release();
    await until(() => handedOn.length > 0);
    expect(handedOn).toEqual(['$m']);
    // Before: the first delivery was answered with a nak (and the entry waited a second, or was dead-lettered).
    expect(roomLogOutcomes).toEqual(['delivery 1: ack']);
  });
});
