// Issue 13 between two fedgates: an encrypted DM with real crypto (matrix-js-sdk's Rust crypto, the
// WebAssembly build) held by each side's bridge for its user, talking to its own gateway as the
// application service. Messages both ways decrypt on the other side; a new device on one side reaches the
// other (m.device_list_update, the cached list, MSC3202 device_lists and /keys/changes) and reads the next
// message. Run against either shape (embedded, distributed).
import { Preset } from 'matrix-js-sdk';
import { createTestCa, openInstanceStore, startFedgatePair, type FedgateInstance, type FedgateShape, type TestBridge } from '@fedgate/testing';
import { appServiceCall, CryptoDevice, type ClientCall } from '../support/src/crypto/crypto-device';

const WAIT_MS = 30_000;

async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch((err: unknown) => err as T);
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A bridge-held device of a virtual user on one gateway. */
class BridgeDevice {
  private seen = 0;
  private constructor(
    readonly gateway: FedgateInstance,
    readonly crypto: CryptoDevice,
    readonly call: ClientCall,
  ) {}

  static async create(gateway: FedgateInstance, userId: string, deviceId: string): Promise<BridgeDevice> {
    const call = appServiceCall(gateway.clientServerUrl, gateway.bridge!.registration.as_token, userId, deviceId);
    await call('PUT', `/devices/${deviceId}`, {});
    return new BridgeDevice(gateway, await CryptoDevice.create(userId, deviceId, call), call);
  }

  get bridge(): TestBridge {
    return this.gateway.bridge!;
  }

  /** Hands the device the to-device messages its bridge was pushed for it since last time. */
  async takeToDevice(): Promise<void> {
    const all = this.bridge.received.all().filter((r) => r.kind === 'to_device' && r.event.to_user_id === this.crypto.userId && r.event.to_device_id === this.crypto.deviceId);
    const fresh = all.slice(this.seen).map((r) => r.event);
    this.seen = all.length;
    if (fresh.length > 0) await this.crypto.receive({ toDevice: fresh });
  }

  async send(roomId: string, to: string[], body: string, txnId: string): Promise<Record<string, unknown>> {
    const content = await this.crypto.encrypt(roomId, to, 'm.room.message', { msgtype: 'm.text', body });
    await this.call('PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/${txnId}`, content);
    return content;
  }

  /** Waits for the encrypted event with that ciphertext at this device's bridge, then decrypts it. */
  async read(roomId: string, ciphertext: unknown): Promise<{ sender: string; content: Record<string, any> }> {
    const event = await this.bridge.received.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.encrypted' && e.content?.ciphertext === ciphertext, WAIT_MS);
    return eventually(
      async () => {
        await this.takeToDevice();
        return this.crypto.decrypt(event, roomId);
      },
      (p) => !(p instanceof Error),
    );
  }
}

export function describeEncryptedDmBetweenFedgates(shape: FedgateShape): void {
  describe(`an encrypted DM between two fedgates with real crypto (issue 13, ${shape})`, () => {
    let a: FedgateInstance;
    let b: FedgateInstance;
    let bob: string;
    let carol: string;
    let bobPhone: BridgeDevice;
    let carolPhone: BridgeDevice;
    let roomId: string;

    beforeAll(async () => {
      const ca = createTestCa();
      [a, b] = await startFedgatePair({ shape, ca, name: 'dma', bridgeMsc3202: true }, { shape, ca, name: 'dmb', bridgeMsc3202: true });
      bob = await a.bridge!.registerVirtualUser('dmachat_bob');
      carol = await b.bridge!.registerVirtualUser('dmbchat_carol');
      bobPhone = await BridgeDevice.create(a, bob, 'BOBPHONE');
      carolPhone = await BridgeDevice.create(b, carol, 'CAROLPHONE');
      ({ room_id: roomId } = await a.bridge!.asUser(bob).createRoom({
        preset: Preset.TrustedPrivateChat,
        is_direct: true,
        invite: [carol],
        room_version: '10',
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
      }));
      await b.bridge!.received.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.member' && e.state_key === carol && e.content?.membership === 'invite', WAIT_MS);
      await b.bridge!.asUser(carol).joinRoom(roomId, { viaServers: [a.serverName] });
      await a.bridge!.received.waitForEvent((e) => e.room_id === roomId && e.type === 'm.room.member' && e.state_key === carol && e.content?.membership === 'join', WAIT_MS);
    }, 240_000);

    afterAll(async () => {
      // The gateways first: a crypto object still in use throws on close, and must not leave them running.
      await Promise.all([a?.destroy(), b?.destroy()]);
      for (const device of [bobPhone, carolPhone]) {
        try {
          device?.crypto.close();
        } catch {
          // Freed already, or in use by a request the failed test left behind.
        }
      }
    }, 60_000);

    it('each side encrypts, the other decrypts (keys, claims and room keys across federation)', async () => {
      const toCarol = await bobPhone.send(roomId, [bob, carol], 'hello Carol', 'b1');
      expect(await carolPhone.read(roomId, toCarol.ciphertext)).toMatchObject({ sender: bob, content: { body: 'hello Carol' } });
      const toBob = await carolPhone.send(roomId, [bob, carol], 'hello Bob', 'c1');
      expect(await bobPhone.read(roomId, toBob.ciphertext)).toMatchObject({ sender: carol, content: { body: 'hello Bob' } });
      // MSC3202: the transaction that carried Bob's to-device messages told the bridge his device's key counts
      // (Carol's device claimed one of the keys it uploaded).
      const counts = a.bridge!.received.all().filter((r) => r.kind === 'key_counts' && r.event.one_time_keys?.[bob]?.BOBPHONE);
      expect(counts.length).toBeGreaterThan(0);
      expect(counts[counts.length - 1]!.event.one_time_keys[bob].BOBPHONE.signed_curve25519).toBeGreaterThan(0);
    });

    it('a small encrypted group room hosted on the other side: three users on two servers read every message', async () => {
      const dave = await a.bridge!.registerVirtualUser('dmachat_dave');
      const davePhone = await BridgeDevice.create(a, dave, 'DAVEPHONE');
      try {
        const { room_id: groupId } = await b.bridge!.asUser(carol).createRoom({
          preset: Preset.PrivateChat,
          invite: [bob, dave],
          room_version: '10',
          initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
        });
        for (const user of [bob, dave]) {
          await a.bridge!.received.waitForEvent((e) => e.room_id === groupId && e.type === 'm.room.member' && e.state_key === user && e.content?.membership === 'invite', WAIT_MS);
          await a.bridge!.asUser(user).joinRoom(groupId, { viaServers: [b.serverName] });
          await b.bridge!.received.waitForEvent((e) => e.room_id === groupId && e.type === 'm.room.member' && e.state_key === user && e.content?.membership === 'join', WAIT_MS);
        }
        const members = [bob, carol, dave];
        const fromCarol = await carolPhone.send(groupId, members, 'hello both', 'g1');
        for (const device of [bobPhone, davePhone]) expect(await device.read(groupId, fromCarol.ciphertext)).toMatchObject({ sender: carol, content: { body: 'hello both' } });
        const fromDave = await davePhone.send(groupId, members, 'hello from dave', 'g2');
        for (const device of [bobPhone, carolPhone]) expect(await device.read(groupId, fromDave.ciphertext)).toMatchObject({ sender: dave, content: { body: 'hello from dave' } });
      } finally {
        davePhone.crypto.close();
      }
    });

    it('a new device on one side reaches the other (cached list, MSC3202 device_lists, /keys/changes) and reads the next message', async () => {
      const carolTablet = await BridgeDevice.create(b, carol, 'CAROLTABLET');
      try {
        const change = await a.bridge!.received.waitForRecord((r) => r.kind === 'device_lists' && r.event.changed?.includes(carol), WAIT_MS);
        expect(change.event).toMatchObject({ changed: expect.arrayContaining([carol]) });
        const changes = await bobPhone.call('GET', '/keys/changes?from=dl0');
        expect(changes.changed).toContain(carol);
        const store = await openInstanceStore(a);
        try {
          // The tablet is announced twice: created without keys (PUT /devices), then with the keys it uploads; a query
          // answered between the two lists it without keys, which a client ignores until the next change.
          const cached = await eventually(() => store.deviceLists.remoteList(carol), (l) => l !== null && !l.stale && Object.keys(l.devices.CAROLTABLET ?? {}).length > 0);
          expect(Object.keys(cached!.devices).sort()).toEqual(['CAROLPHONE', 'CAROLTABLET']);
        } finally {
          await store.close();
        }
        await bobPhone.crypto.receive({ changed: change.event.changed });
        const message = await bobPhone.send(roomId, [bob, carol], 'for both of your devices', 'b2');
        expect(await bobPhone.crypto.knownDevices(carol)).toEqual(['CAROLPHONE', 'CAROLTABLET']);
        expect(await carolTablet.read(roomId, message.ciphertext)).toMatchObject({ sender: bob, content: { body: 'for both of your devices' } });
      } finally {
        carolTablet.crypto.close();
      }
    });
  });
}
