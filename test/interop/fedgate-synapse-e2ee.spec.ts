// Issue 13, the proof: an encrypted DM between a Synapse user and a chat-platform user behind fedgate,
// with real crypto on both sides (matrix-js-sdk's Rust crypto, the WebAssembly build). The Synapse user's
// device talks to Synapse's client-server API; the chat-platform user's device is held by the bridge and
// talks to fedgate as the application service (MSC4190 device, `device_id=` masquerading, to-device
// messages from the AS transactions). Each side encrypts; the other decrypts.
import { Preset } from 'matrix-js-sdk';
import { openInstanceStore, type SynapseUser } from '@fedgate/testing';
import { appServiceCall, CryptoDevice, tokenCall } from '../support/src/crypto/crypto-device';
import { eventually, membershipIs, startPeers, stopPeers, WAIT_MS, type Peers } from './support/peers';

jest.setTimeout(180_000);

const NAME = 'e2ee';

describe('fedgate and Synapse: an encrypted DM with real crypto on both sides (issue 13)', () => {
  let peers: Peers;
  let alice: SynapseUser;
  let aliceDevice: CryptoDevice;
  let bob: string;
  let bobDevice: CryptoDevice;
  let roomId: string;
  let since: string | undefined;
  const aliceTimeline: Record<string, any>[] = [];
  let bobToDeviceSeen = 0;

  /** One incremental sync of Alice's: to-device, device lists and key counts to her device, timeline kept. */
  async function syncAlice(): Promise<void> {
    const sync = await tokenCall(peers.synapse.clientUrl, alice.accessToken)('GET', `/sync?timeout=0${since ? `&since=${encodeURIComponent(since)}` : ''}`);
    since = sync.next_batch;
    await aliceDevice.receive({
      toDevice: sync.to_device?.events ?? [],
      changed: sync.device_lists?.changed ?? [],
      left: sync.device_lists?.left ?? [],
      oneTimeKeyCounts: sync.device_one_time_keys_count ?? {},
      unusedFallbackKeyTypes: sync.device_unused_fallback_key_types ?? [],
    });
    for (const room of Object.values<any>(sync.rooms?.join ?? {})) aliceTimeline.push(...(room.timeline?.events ?? []));
  }

  /** The to-device messages the bridge was pushed for one of Bob's devices since last time, to that device. */
  const toDeviceSeen = new Map<string, number>();
  async function deliverToDevice(device: CryptoDevice): Promise<number> {
    const all = peers.bridge.received.all().filter((r) => r.kind === 'to_device' && r.event.to_user_id === bob && r.event.to_device_id === device.deviceId);
    const fresh = all.slice(toDeviceSeen.get(device.deviceId) ?? 0).map((r) => r.event);
    toDeviceSeen.set(device.deviceId, all.length);
    if (fresh.length > 0) await device.receive({ toDevice: fresh });
    return fresh.length;
  }
  const deliverBobsToDevice = async () => {
    bobToDeviceSeen += await deliverToDevice(bobDevice);
    return bobToDeviceSeen;
  };

  beforeAll(async () => {
    peers = await startPeers(NAME, { bridgeMsc3202: true });
    alice = await peers.synapse.registerUser('alice');
    bob = await peers.bridge.registerVirtualUser(`${NAME}chat_bob`);
    const asToken = peers.bridge.registration.as_token;
    // The bridge creates Bob's device without a login (MSC4190), then its crypto uploads the keys.
    const bobCall = appServiceCall(peers.fedgate.clientServerUrl, asToken, bob, 'BOBBRIDGE');
    await bobCall('PUT', '/devices/BOBBRIDGE', { display_name: 'bridge' });
    bobDevice = await CryptoDevice.create(bob, 'BOBBRIDGE', bobCall);
    aliceDevice = await CryptoDevice.create(alice.userId, alice.deviceId, tokenCall(peers.synapse.clientUrl, alice.accessToken));
    await syncAlice();

    const aliceCall = tokenCall(peers.synapse.clientUrl, alice.accessToken);
    ({ room_id: roomId } = await aliceCall('POST', '/createRoom', {
      preset: Preset.TrustedPrivateChat,
      is_direct: true,
      invite: [bob],
      room_version: '10',
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    }));
    await peers.bridge.received.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
    await peers.bridge.asUser(bob).joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
    await eventually(() => aliceCall('GET', `/rooms/${encodeURIComponent(roomId)}/joined_members`), (r) => bob in (r?.joined ?? {}));
  }, 600_000);

  afterAll(async () => {
    // The servers first: a crypto object still in use throws on close, and must not leave them running.
    await stopPeers(NAME, peers ?? {});
    for (const device of [aliceDevice, bobDevice]) {
      try {
        device?.close();
      } catch {
        // Freed already, or in use by a request the failed test left behind.
      }
    }
  }, 60_000);

  it('Synapse → fedgate: Alice encrypts for Bob\'s bridge-held device (keys over federation, the room key as a to-device message), the bridge decrypts', async () => {
    const content = await aliceDevice.encrypt(roomId, [alice.userId, bob], 'm.room.message', { msgtype: 'm.text', body: 'hello Bob, from Synapse' });
    expect(content.algorithm).toBe('m.megolm.v1.aes-sha2');
    // Alice's device found Bob's device through Synapse, which asked fedgate over federation.
    expect(await aliceDevice.knownDevices(bob)).toEqual(['BOBBRIDGE']);
    await tokenCall(peers.synapse.clientUrl, alice.accessToken)('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/a1`, content);

    const encrypted = await peers.bridge.received.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.encrypted' && e.sender === alice.userId, WAIT_MS);
    expect(JSON.stringify(encrypted)).not.toContain('hello Bob');
    await eventually(deliverBobsToDevice, () => bobToDeviceSeen > 0);
    const plain = await bobDevice.decrypt(encrypted, roomId);
    expect(plain).toMatchObject({ type: 'm.room.message', sender: alice.userId, content: { body: 'hello Bob, from Synapse' } });
  });

  it('fedgate → Synapse: the bridge encrypts as Bob (Alice\'s keys cached from Synapse), Alice\'s device decrypts', async () => {
    const bobCall = appServiceCall(peers.fedgate.clientServerUrl, peers.bridge.registration.as_token, bob, 'BOBBRIDGE');
    const content = await bobDevice.encrypt(roomId, [alice.userId, bob], 'm.room.message', { msgtype: 'm.text', body: 'hello Alice, from the chat platform' });
    expect(await bobDevice.knownDevices(alice.userId)).toEqual([alice.deviceId]);
    // fedgate resynced Alice's list (she shares a room with Bob) and keeps it current from here on.
    const store = await openInstanceStore(peers.fedgate);
    try {
      expect(await store.deviceLists.remoteList(alice.userId)).toMatchObject({ stale: false, devices: { [alice.deviceId]: expect.objectContaining({ device_id: alice.deviceId }) } });
    } finally {
      await store.close();
    }
    const { event_id: eventId } = await bobCall('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/b1`, content);

    const encrypted = await eventually(
      async () => {
        await syncAlice();
        return aliceTimeline.find((e) => e.event_id === eventId);
      },
      (e) => e !== undefined,
    );
    expect(encrypted).toMatchObject({ type: 'm.room.encrypted', sender: bob });
    const plain = await eventually(
      async () => {
        await syncAlice();
        return aliceDevice.decrypt(encrypted!, roomId);
      },
      (p) => !(p instanceof Error),
    );
    expect(plain).toMatchObject({ type: 'm.room.message', sender: bob, content: { body: 'hello Alice, from the chat platform' } });
  });

  it('a new device of the Synapse user reaches fedgate as a device-list change (cached list, MSC3202 device_lists to the bridge); the bridge\'s next message is readable on it', async () => {
    const login = await fetch(`${peers.synapse.clientUrl}/_matrix/client/v3/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.userId }, password: alice.password }),
    }).then((r) => r.json() as Promise<{ access_token: string; device_id: string }>);
    const laptop = await CryptoDevice.create(alice.userId, login.device_id, tokenCall(peers.synapse.clientUrl, login.access_token));
    try {
      const change = await peers.bridge.received.waitForRecord((r) => r.kind === 'device_lists' && r.event.changed?.includes(alice.userId), WAIT_MS);
      expect(change.event.changed).toContain(alice.userId);
      const store = await openInstanceStore(peers.fedgate);
      try {
        const cached = await eventually(() => store.deviceLists.remoteList(alice.userId), (l) => l !== null && !l.stale && login.device_id in l.devices);
        expect(Object.keys(cached!.devices).sort()).toEqual([alice.deviceId, login.device_id].sort());
      } finally {
        await store.close();
      }
      await bobDevice.receive({ changed: [alice.userId] });
      const bobCall = appServiceCall(peers.fedgate.clientServerUrl, peers.bridge.registration.as_token, bob, 'BOBBRIDGE');
      const content = await bobDevice.encrypt(roomId, [alice.userId, bob], 'm.room.message', { msgtype: 'm.text', body: 'for both of your devices' });
      expect(await bobDevice.knownDevices(alice.userId)).toEqual([alice.deviceId, login.device_id].sort());
      const { event_id: eventId } = await bobCall('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/b2`, content);
      let laptopSince: string | undefined;
      const plain = await eventually(
        async () => {
          const sync = await tokenCall(peers.synapse.clientUrl, login.access_token)('GET', `/sync?timeout=0${laptopSince ? `&since=${encodeURIComponent(laptopSince)}` : ''}`);
          laptopSince = sync.next_batch;
          await laptop.receive({ toDevice: sync.to_device?.events ?? [] });
          const event = (sync.rooms?.join?.[roomId]?.timeline?.events ?? []).find((e: any) => e.event_id === eventId);
          return event ? laptop.decrypt(event, roomId) : Promise.reject(new Error('not yet'));
        },
        (p) => !(p instanceof Error),
      );
      expect(plain).toMatchObject({ sender: bob, content: { body: 'for both of your devices' } });
    } finally {
      laptop.close();
    }
  });

  it('a new bridge-held device of the fedgate user reaches Synapse as a device-list change; Alice\'s next message is readable on it', async () => {
    const tabletCall = appServiceCall(peers.fedgate.clientServerUrl, peers.bridge.registration.as_token, bob, 'BOBTABLET');
    await tabletCall('PUT', '/devices/BOBTABLET', {});
    const tablet = await CryptoDevice.create(bob, 'BOBTABLET', tabletCall);
    try {
      // Synapse learns of the device from fedgate's m.device_list_update and tells Alice's client.
      const aliceCall = tokenCall(peers.synapse.clientUrl, alice.accessToken);
      await eventually(
        async () => {
          const sync = await aliceCall('GET', `/sync?timeout=0${since ? `&since=${encodeURIComponent(since)}` : ''}`);
          since = sync.next_batch;
          await aliceDevice.receive({ toDevice: sync.to_device?.events ?? [], changed: sync.device_lists?.changed ?? [] });
          await aliceDevice.encrypt(roomId, [bob], 'm.room.message', { body: 'probe' }).catch(() => undefined);
          return aliceDevice.knownDevices(bob);
        },
        (devices) => Array.isArray(devices) && devices.includes('BOBTABLET'),
      );
      const content = await aliceDevice.encrypt(roomId, [alice.userId, bob], 'm.room.message', { msgtype: 'm.text', body: 'for your new device too' });
      await aliceCall('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/a2`, content);
      const encrypted = await peers.bridge.received.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.encrypted' && e.content?.ciphertext === content.ciphertext, WAIT_MS);
      const plain = await eventually(
        async () => {
          await deliverToDevice(tablet);
          return tablet.decrypt(encrypted, roomId);
        },
        (p) => !(p instanceof Error),
      );
      expect(plain).toMatchObject({ sender: alice.userId, content: { body: 'for your new device too' } });
    } finally {
      tablet.close();
    }
  });

  it('a small encrypted group room: two Synapse users and the fedgate user read every message', async () => {
    const erin = await peers.synapse.registerUser('erin');
    const erinCall = tokenCall(peers.synapse.clientUrl, erin.accessToken);
    const erinDevice = await CryptoDevice.create(erin.userId, erin.deviceId, erinCall);
    let erinSince: string | undefined;
    /** Erin's next sync handed to her device; the timeline events of the room. */
    const syncErin = async (room: string): Promise<Record<string, any>[]> => {
      const sync = await erinCall('GET', `/sync?timeout=0${erinSince ? `&since=${encodeURIComponent(erinSince)}` : ''}`);
      erinSince = sync.next_batch;
      await erinDevice.receive({ toDevice: sync.to_device?.events ?? [], changed: sync.device_lists?.changed ?? [] });
      return sync.rooms?.join?.[room]?.timeline?.events ?? [];
    };
    try {
      const aliceCall = tokenCall(peers.synapse.clientUrl, alice.accessToken);
      const { room_id: groupId } = await aliceCall('POST', '/createRoom', {
        preset: Preset.PrivateChat,
        invite: [bob, erin.userId],
        room_version: '10',
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
      });
      await erinCall('POST', `/join/${encodeURIComponent(groupId)}`, {});
      await peers.bridge.received.waitForEvent((e) => e.room_id === groupId && membershipIs(bob, 'invite')(e), WAIT_MS);
      await peers.bridge.asUser(bob).joinRoom(groupId, { viaServers: [peers.synapse.serverName] });
      await eventually(() => aliceCall('GET', `/rooms/${encodeURIComponent(groupId)}/joined_members`), (r) => bob in (r?.joined ?? {}) && erin.userId in (r?.joined ?? {}));
      const members = [alice.userId, erin.userId, bob];
      const erinReads = async (eventId: string) => {
        const seen: Record<string, any>[] = [];
        return eventually(
          async () => {
            seen.push(...(await syncErin(groupId)));
            const event = seen.find((e) => e.event_id === eventId);
            return event ? erinDevice.decrypt(event, groupId) : Promise.reject(new Error('not yet'));
          },
          (p) => !(p instanceof Error),
        );
      };

      const fromAlice = await aliceDevice.encrypt(groupId, members, 'm.room.message', { msgtype: 'm.text', body: 'hello group' });
      const { event_id: aliceEventId } = await aliceCall('PUT', `/rooms/${encodeURIComponent(groupId)}/send/m.room.encrypted/g1`, fromAlice);
      const atBridge = await peers.bridge.received.waitForEvent((e) => e.event_id === aliceEventId, WAIT_MS);
      const bobReads = await eventually(
        async () => {
          await deliverBobsToDevice();
          return bobDevice.decrypt(atBridge, groupId);
        },
        (p) => !(p instanceof Error),
      );
      expect(bobReads).toMatchObject({ sender: alice.userId, content: { body: 'hello group' } });
      expect(await erinReads(aliceEventId)).toMatchObject({ sender: alice.userId, content: { body: 'hello group' } });

      const bobCall = appServiceCall(peers.fedgate.clientServerUrl, peers.bridge.registration.as_token, bob, 'BOBBRIDGE');
      const fromBob = await bobDevice.encrypt(groupId, members, 'm.room.message', { msgtype: 'm.text', body: 'hello from the chat platform' });
      const { event_id: bobEventId } = await bobCall('PUT', `/rooms/${encodeURIComponent(groupId)}/send/m.room.encrypted/g2`, fromBob);
      expect(await erinReads(bobEventId)).toMatchObject({ sender: bob, content: { body: 'hello from the chat platform' } });
      const aliceReads = await eventually(
        async () => {
          await syncAlice();
          const event = aliceTimeline.find((e) => e.event_id === bobEventId);
          return event ? aliceDevice.decrypt(event, groupId) : Promise.reject(new Error('not yet'));
        },
        (p) => !(p instanceof Error),
      );
      expect(aliceReads).toMatchObject({ sender: bob, content: { body: 'hello from the chat platform' } });
    } finally {
      erinDevice.close();
    }
  });
});
