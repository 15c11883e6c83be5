// Issue 13: every device-list change reaches the servers sharing a room with the user (an EDU) and the
// MSC3202 application services whose users share a room with them (`device_lists`), also when the process
// dies between storing the change and publishing it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busTopology } from '@fedgate/bus';
import type { Bus, ServerIdentity } from '@fedgate/platform';
import { openSqliteStore, type Store } from '@fedgate/store';
import { ApplicationServiceRegistry } from '../registration';
import { DeviceListOutbox } from './device-list-outbox';
import { DevicesController } from './devices.controller';
import { fakeRegistration } from '../registration/fake-registration';

const topology = busTopology({ prefix: 'outbox' });
const ALICE = '@chat_alice:gw.test';
const registration = (id: string, msc3202: boolean) =>
  fakeRegistration(id, 'http://bridge.invalid', { senderLocalpart: `${id}_bot`, namespaces: { users: [{ regex: `@${id}_.*:gw\\.test`, exclusive: true }], aliases: [], rooms: [] }, receiveEphemeral: true, msc3202 });
const registry = new ApplicationServiceRegistry([registration('chat', true), registration('other', true), registration('plain', false)], 'gw.test');

describe('device-list change fan-out (issue 13)', () => {
  let dir: string;
  let store: Store;
  let published: Array<{ subject: string; data: any; messageId?: string }>;
  /** Publishes fail from this one on (a process dying, or the bus gone). */
  let failFrom: number;

  function bus(): Bus {
    let calls = 0;
    return {
      publish: async (subject: string, data: unknown, options?: { messageId?: string }) => {
        if (++calls >= failFrom) throw new Error('simulated crash before the publish');
        // The bus deduplicates by message ID.
        if (!published.some((p) => p.messageId === options?.messageId)) published.push({ subject, data, messageId: options?.messageId });
      },
    } as unknown as Bus;
  }
  function outbox(shares: (userId: string, member: (m: string) => boolean) => boolean = () => false): DeviceListOutbox {
    const withRooms = { ...store, memberships: { roomsOf: async () => ['!room:gw.test'] }, rooms: { getJoinedServers: async () => ['gw.test', 'remote.test'] } } as unknown as Store;
    const o = new DeviceListOutbox(withRooms, bus(), topology, { serverName: 'gw.test' } as ServerIdentity, registry);
    o.sharedRooms = { sharesRoomWith: async (userId, member) => shares(userId, member) };
    return o;
  }
  const edus = () => published.filter((p) => p.subject === topology.outboundEdu.subject).map((p) => p.data);
  const deviceLists = () => published.filter((p) => p.data.kind === 'device_list').map((p) => [p.data.appserviceId, p.data.event]);

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'outbox-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
    published = [];
    failFrom = Infinity;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a process dying between storing a new device and publishing its EDU: the EDU goes out after the restart, once', async () => {
    failFrom = 1;
    const dying = new DevicesController(store, outbox());
    await dying.put({ userId: ALICE } as never, 'PHONE', { display_name: 'Phone' }, { status: () => undefined } as never);
    expect(edus()).toEqual([]);
    failFrom = Infinity;
    await outbox().drain(); // the restart's drain
    await outbox().drain();
    expect(edus()).toEqual([expect.objectContaining({ eduType: 'm.device_list_update', destinations: ['remote.test'], content: { user_id: ALICE, device_id: 'PHONE', stream_id: 1, prev_id: [] } })]);
    expect(await store.deviceLists.unannounced(10)).toEqual([]);
  });

  it('a process dying at any write of a device change (store write, EDU and service publishes, mark announced): after the restart the EDU is out, once', async () => {
    const WRITES = ['putDevice', 'setDeviceKeys', 'deleteDevice', 'markAnnounced', 'recordChange'];
    /** The store and bus of a process that dies at write `dieAt` (every write from there on throws). */
    const dyingAt = (dieAt: number) => {
      let writes = 0;
      const write = () => {
        if (++writes >= dieAt) throw new Error(`simulated crash at write ${writes}`);
      };
      const wrap = <T extends object>(target: T): T =>
        new Proxy(target, {
          get: (t, key) => {
            const value = (t as Record<string | symbol, unknown>)[key];
            if (typeof value !== 'function') return value;
            if (!WRITES.includes(key as string)) return value.bind(t);
            return async (...args: unknown[]) => {
              write();
              return value.apply(t, args);
            };
          },
        });
      const dyingStore = { ...store, deviceKeys: wrap(store.deviceKeys), deviceLists: wrap(store.deviceLists) } as Store;
      const base = bus();
      const dyingBus = { publish: async (...args: Parameters<Bus['publish']>) => (write(), base.publish(...args)) } as unknown as Bus;
      return { dyingStore, dyingBus, writes: () => writes };
    };
    const withRooms = (s: Store) => ({ ...s, memberships: { roomsOf: async () => ['!room:gw.test'] }, rooms: { getJoinedServers: async () => ['gw.test', 'remote.test'] } }) as unknown as Store;
    const makeOutbox = (s: Store, b: Bus) => {
      const o = new DeviceListOutbox(withRooms(s), b, topology, { serverName: 'gw.test' } as ServerIdentity, registry);
      o.sharedRooms = { sharesRoomWith: async () => false };
      return o;
    };
    const probe = dyingAt(Infinity);
    await new DevicesController(probe.dyingStore, makeOutbox(probe.dyingStore, probe.dyingBus)).put({ userId: ALICE } as never, 'PROBE', {}, { status: () => undefined } as never);
    const total = probe.writes();
    // The device write, the EDU, the owning service's device_list push, the mark.
    expect(total).toBe(4);
    for (let dieAt = 1; dieAt <= total; dieAt++) {
      const deviceId = `DEV${dieAt}`;
      const { dyingStore, dyingBus } = dyingAt(dieAt);
      await new DevicesController(dyingStore, makeOutbox(dyingStore, dyingBus)).put({ userId: ALICE } as never, deviceId, {}, { status: () => undefined } as never).catch(() => undefined);
      // The client retries (the device exists now, or not), then the process restarts.
      await new DevicesController(store, outbox()).put({ userId: ALICE } as never, deviceId, {}, { status: () => undefined } as never);
      await outbox().drain();
      expect(edus().filter((e) => e.content.device_id === deviceId)).toHaveLength(1);
    }
    expect(await store.deviceLists.unannounced(10)).toEqual([]);
  });

  it('publishes each change as the device is now (deleted when gone), chained by stream id, and cross-signing changes as m.signing_key_update', async () => {
    await store.deviceKeys.putDevice(ALICE, 'PHONE');
    await store.deviceKeys.putDevice(ALICE, 'LAPTOP');
    await store.deviceKeys.deleteDevice(ALICE, 'LAPTOP');
    await store.deviceKeys.setCrossSigningKey(ALICE, 'master', { user_id: ALICE, usage: ['master'], keys: {} });
    await outbox().drain();
    expect(edus().map((e) => [e.eduType, e.content.device_id, e.content.stream_id, e.content.prev_id, e.content.deleted])).toEqual([
      ['m.device_list_update', 'PHONE', 1, [], undefined],
      ['m.device_list_update', 'LAPTOP', 2, [1], true],
      ['m.device_list_update', 'LAPTOP', 3, [2], true],
      ['m.signing_key_update', undefined, undefined, undefined, undefined],
    ]);
    expect(edus()[3].content).toEqual({ user_id: ALICE, master_key: { user_id: ALICE, usage: ['master'], keys: {} } });
  });

  it('tells MSC3202 services whose users share a room with the user that the list changed, and left once no room is shared', async () => {
    const BOB = '@bob:remote.test';
    let sharing = true;
    const o = outbox((userId, member) => userId === BOB && sharing && member('@chat_alice:gw.test'));
    await store.deviceLists.recordChange(BOB, 'remote');
    await store.deviceKeys.putDevice(ALICE, 'PHONE');
    await o.drain();
    sharing = false;
    await store.deviceLists.recordChange(BOB, 'remote');
    await store.deviceLists.recordChange(BOB, 'membership');
    await o.drain();
    // Only `chat` shares a room with Bob; `chat` owns Alice; `plain` has no MSC3202.
    expect(deviceLists()).toEqual([
      ['chat', { user_id: BOB }],
      ['chat', { user_id: ALICE }],
      ['chat', { user_id: BOB, left: true }],
      ['other', { user_id: BOB, left: true }],
    ]);
  });
});
