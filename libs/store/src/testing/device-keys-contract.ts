// The device and key contract every store adapter passes: devices with a per-user stream id that moves
// on every change, one-time keys handed out once (also under concurrent claims), fallback keys after.
import type { Store } from '../ports/store';

export function describeDeviceKeyContract(name: string, open: () => Promise<Store>): void {
  describe(`device key contract: ${name}`, () => {
    let store: Store;
    let other: Store;
    // Each run gets its own users: the database may be reused across runs.
    const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const user = (localpart: string) => `@${localpart}-${run}:gw.test`;
    beforeAll(async () => {
      store = await open();
      other = await open();
    });
    afterAll(async () => {
      await store?.close();
      await other?.close();
    });

    it('creates, renames, lists and deletes devices, moving the stream id on each change only', async () => {
      const alice = user('alice');
      expect(await store.deviceKeys.deviceListStreamId(alice)).toBe(0);
      expect(await store.deviceKeys.putDevice(alice, 'DEVB', 'Phone', 1_000)).toEqual({ created: true, changed: true, streamId: 1 });
      expect(await store.deviceKeys.putDevice(alice, 'DEVB', 'Phone')).toEqual({ created: false, changed: false, streamId: 1 });
      expect(await store.deviceKeys.putDevice(alice, 'DEVB')).toEqual({ created: false, changed: false, streamId: 1 });
      expect(await other.deviceKeys.putDevice(alice, 'DEVB', 'Laptop')).toEqual({ created: false, changed: true, streamId: 2 });
      expect(await store.deviceKeys.putDevice(alice, 'DEVA', null, 2_000)).toEqual({ created: true, changed: true, streamId: 3 });
      expect(await store.deviceKeys.listDevices(alice)).toEqual([
        { userId: alice, deviceId: 'DEVA', displayName: null, keys: null, createdTs: 2_000 },
        { userId: alice, deviceId: 'DEVB', displayName: 'Laptop', keys: null, createdTs: 1_000 },
      ]);
      expect(await store.deviceKeys.listDevices(user('nobody'))).toEqual([]);
      expect(await store.deviceKeys.deleteDevice(alice, 'DEVA')).toEqual({ deleted: true, streamId: 4 });
      expect(await store.deviceKeys.deleteDevice(alice, 'DEVA')).toEqual({ deleted: false, streamId: 4 });
      expect(await store.deviceKeys.getDevice(alice, 'DEVA')).toBeNull();
      expect(await store.deviceKeys.getDevice(alice, 'DEVB')).toMatchObject({ displayName: 'Laptop' });
    });

    it('keeps device keys, moving the stream id only when they change, and only for an existing device', async () => {
      const bob = user('bob');
      const keys = { user_id: bob, device_id: 'D1', algorithms: ['m.olm.v1.curve25519-aes-sha2'], keys: { 'ed25519:D1': 'k' }, signatures: {} };
      expect(await store.deviceKeys.setDeviceKeys(bob, 'D1', keys)).toEqual({ found: false, changed: false, streamId: 0 });
      await store.deviceKeys.putDevice(bob, 'D1');
      expect(await store.deviceKeys.setDeviceKeys(bob, 'D1', keys)).toEqual({ found: true, changed: true, streamId: 2 });
      expect(await other.deviceKeys.setDeviceKeys(bob, 'D1', { ...keys })).toEqual({ found: true, changed: false, streamId: 2 });
      expect((await other.deviceKeys.getDevice(bob, 'D1'))?.keys).toEqual(keys);
    });

    it('hands out each one-time key once, then the fallback key, and refuses a reused key ID with another key', async () => {
      const carol = user('carol');
      await store.deviceKeys.putDevice(carol, 'D1');
      const otk = (n: number) => ({ key: `key-${n}`, signatures: { [carol]: { 'ed25519:D1': `sig-${n}` } } });
      expect(await store.deviceKeys.addOneTimeKeys(carol, 'D1', { 'signed_curve25519:A1': otk(1), 'signed_curve25519:A2': otk(2), 'curve25519:B1': 'plain' })).toEqual({ conflicts: [] });
      // A retried upload is a no-op; the same key ID with another key is a conflict.
      expect(await store.deviceKeys.addOneTimeKeys(carol, 'D1', { 'signed_curve25519:A1': otk(1), 'signed_curve25519:A2': otk(9) })).toEqual({ conflicts: ['signed_curve25519:A2'] });
      expect(await store.deviceKeys.countOneTimeKeys(carol, 'D1')).toEqual({ signed_curve25519: 2, curve25519: 1 });
      await store.deviceKeys.setFallbackKeys(carol, 'D1', { 'signed_curve25519:F1': { ...otk(3), fallback: true } });
      expect(await store.deviceKeys.unusedFallbackKeyAlgorithms(carol, 'D1')).toEqual(['signed_curve25519']);

      const claims = await Promise.all([store, other, store].map((s) => s.deviceKeys.claimKey(carol, 'D1', 'signed_curve25519')));
      const oneTime = claims.filter((c) => c && !c.fallback).map((c) => c!.keyId).sort();
      expect(oneTime).toEqual(['signed_curve25519:A1', 'signed_curve25519:A2']);
      expect(claims.filter((c) => c?.fallback)).toEqual([{ keyId: 'signed_curve25519:F1', key: { ...otk(3), fallback: true }, fallback: true }]);
      expect(await store.deviceKeys.countOneTimeKeys(carol, 'D1')).toEqual({ curve25519: 1 });
      expect(await store.deviceKeys.unusedFallbackKeyAlgorithms(carol, 'D1')).toEqual([]);
      // The fallback key stays until replaced; a new one is unused again.
      expect(await store.deviceKeys.claimKey(carol, 'D1', 'signed_curve25519')).toMatchObject({ keyId: 'signed_curve25519:F1', fallback: true });
      await store.deviceKeys.setFallbackKeys(carol, 'D1', { 'signed_curve25519:F2': { key: 'f2' } });
      expect(await store.deviceKeys.unusedFallbackKeyAlgorithms(carol, 'D1')).toEqual(['signed_curve25519']);
      expect(await store.deviceKeys.claimKey(carol, 'D1', 'unknown_alg')).toBeNull();
      expect(await store.deviceKeys.claimKey(carol, 'NODEVICE', 'signed_curve25519')).toBeNull();
    });

    it('deletes a device with its one-time and fallback keys', async () => {
      const dan = user('dan');
      await store.deviceKeys.putDevice(dan, 'D1');
      await store.deviceKeys.addOneTimeKeys(dan, 'D1', { 'signed_curve25519:A': { key: 'a' } });
      await store.deviceKeys.setFallbackKeys(dan, 'D1', { 'signed_curve25519:F': { key: 'f' } });
      await store.deviceKeys.deleteDevice(dan, 'D1');
      await store.deviceKeys.putDevice(dan, 'D1');
      expect(await store.deviceKeys.countOneTimeKeys(dan, 'D1')).toEqual({});
      expect(await store.deviceKeys.claimKey(dan, 'D1', 'signed_curve25519')).toBeNull();
    });

    it('keeps cross-signing keys per usage, moving the stream id', async () => {
      const erin = user('erin');
      const master = { user_id: erin, usage: ['master'], keys: { 'ed25519:M': 'M' } };
      expect(await store.deviceKeys.setCrossSigningKey(erin, 'master', master)).toEqual({ streamId: 1 });
      expect(await other.deviceKeys.setCrossSigningKey(erin, 'self_signing', { ...master, usage: ['self_signing'] })).toEqual({ streamId: 2 });
      expect(await store.deviceKeys.crossSigningKeys(erin)).toEqual({ master, self_signing: { ...master, usage: ['self_signing'] } });
      expect(await store.deviceKeys.crossSigningKeys(user('nobody'))).toEqual({});
    });

    it('keeps user-signing signatures per signer and target, replacing one by key ID', async () => {
      const signer = user('jo');
      await store.deviceKeys.addUserSigningSignature(signer, '@kim:remote.test', 'ed25519:U', 'sig1');
      await other.deviceKeys.addUserSigningSignature(signer, '@kim:remote.test', 'ed25519:U', 'sig2');
      await store.deviceKeys.addUserSigningSignature(signer, '@lee:remote.test', 'ed25519:U', 'sig3');
      expect(await store.deviceKeys.userSigningSignatures(signer, '@kim:remote.test')).toEqual({ 'ed25519:U': 'sig2' });
      expect(await store.deviceKeys.userSigningSignatures(user('nobody'), '@kim:remote.test')).toEqual({});
    });

    it('logs every local change with its stream id, unannounced until marked (the EDU outbox)', async () => {
      const fay = user('fay');
      const before = await store.deviceLists.latestPosition();
      await store.deviceKeys.putDevice(fay, 'D1');
      await store.deviceKeys.setDeviceKeys(fay, 'D1', { device_id: 'D1' });
      await store.deviceKeys.setCrossSigningKey(fay, 'master', { usage: ['master'] });
      await store.deviceKeys.deleteDevice(fay, 'D1');
      const logged = (await store.deviceLists.changesSince(before, 1000)).filter((c) => c.userId === fay);
      expect(logged.map(({ kind, deviceId, streamId }) => ({ kind, deviceId, streamId }))).toEqual([
        { kind: 'device', deviceId: 'D1', streamId: 1 },
        { kind: 'device', deviceId: 'D1', streamId: 2 },
        { kind: 'signing', deviceId: null, streamId: 3 },
        { kind: 'device', deviceId: 'D1', streamId: 4 },
      ]);
      expect(logged.every((c, i) => i === 0 || c.position > logged[i - 1]!.position)).toBe(true);
      expect(await store.deviceLists.latestPosition()).toBeGreaterThanOrEqual(logged[3]!.position);
      const pending = (await store.deviceLists.unannounced(10_000)).filter((c) => c.userId === fay);
      expect(pending.map((c) => c.position)).toEqual(logged.map((c) => c.position));
      for (const c of pending) await other.deviceLists.markAnnounced(c.position);
      // Every write above finished: nothing is left marked for the repair.
      expect(await store.deviceKeys.finishPendingChanges(Date.now() + 60_000)).toBe(0);
      expect((await store.deviceLists.unannounced(10_000)).filter((c) => c.userId === fay)).toEqual([]);
      const remote = await store.deviceLists.recordChange('@gus:remote.test', 'remote');
      const joined = await other.deviceLists.recordChange('@gus:remote.test', 'membership');
      expect(await store.deviceLists.changesSince(remote - 1, 2)).toMatchObject([
        { position: remote, userId: '@gus:remote.test', kind: 'remote' },
        { position: joined, userId: '@gus:remote.test', kind: 'membership' },
      ]);
      expect((await store.deviceLists.unannounced(10_000)).filter((c) => c.position >= remote).map((c) => c.position)).toEqual([remote, joined]);
    });

    it('replaces a cached remote device list only when the held one is the one expected', async () => {
      const hal = `@hal-${run}:remote.test`;
      const list = { userId: hal, streamId: 3, devices: { D1: { device_id: 'D1' } }, masterKey: null, selfSigningKey: { usage: ['self_signing'] }, stale: false, updatedTs: 5 };
      expect(await store.deviceLists.remoteList(hal)).toBeNull();
      expect(await store.deviceLists.replaceRemoteList(list, null)).toBe(true);
      expect(await other.deviceLists.replaceRemoteList(list, null)).toBe(false);
      expect(await store.deviceLists.remoteList(hal)).toEqual(list);
      expect(await store.deviceLists.replaceRemoteList({ ...list, streamId: 4 }, { streamId: 2, stale: false })).toBe(false);
      expect(await store.deviceLists.replaceRemoteList({ ...list, streamId: 4, stale: true, updatedTs: 1 }, { streamId: 3, stale: false })).toBe(true);
      expect(await other.deviceLists.staleRemoteUsers(100_000)).toContain(hal);
      expect(await store.deviceLists.replaceRemoteList({ ...list, streamId: 9 }, { streamId: 4, stale: false })).toBe(false);
      expect(await store.deviceLists.replaceRemoteList({ ...list, streamId: 9 }, { streamId: 4, stale: true })).toBe(true);
      expect(await store.deviceLists.remoteList(hal)).toMatchObject({ streamId: 9, stale: false });
      const before = await store.deviceLists.latestPosition();
      expect(await store.deviceLists.replaceRemoteList({ ...list, streamId: 10 }, { streamId: 9, stale: false }, { logChange: true })).toBe(true);
      expect(await store.deviceLists.replaceRemoteList({ ...list, streamId: 11 }, { streamId: 9, stale: false }, { logChange: true })).toBe(false);
      expect((await store.deviceLists.changesSince(before, 100)).filter((c) => c.userId === hal)).toMatchObject([{ kind: 'remote' }]);
      expect(await store.deviceLists.staleRemoteUsers(100_000)).not.toContain(hal);
    });

    it('keeps a to-device request until published, once per key, and remembers inbound messages handed on', async () => {
      const key = `key-${run}`;
      const message = { key, sender: user('ivy'), type: 'm.test', messages: { '@x:y.test': { D: { a: 1 } } }, createdTs: 7 };
      expect(await store.toDevice.reserve(message)).toEqual({ ...message, published: false });
      expect(await other.toDevice.reserve({ ...message, messages: {}, createdTs: 8 })).toEqual({ ...message, published: false });
      expect((await store.toDevice.unpublished(100_000)).map((m) => m.key)).toContain(key);
      await store.toDevice.markPublished(key);
      expect((await store.toDevice.unpublished(100_000)).map((m) => m.key)).not.toContain(key);
      expect(await other.toDevice.reserve(message)).toMatchObject({ published: true });
      expect(await store.toDevice.wasDelivered('o.test', '@s:o.test', key)).toBe(false);
      await store.toDevice.markDelivered('o.test', '@s:o.test', key);
      await other.toDevice.markDelivered('o.test', '@s:o.test', key);
      expect(await other.toDevice.wasDelivered('o.test', '@s:o.test', key)).toBe(true);
      expect(await other.toDevice.wasDelivered('p.test', '@s:o.test', key)).toBe(false);
      const old = `old-${run}`;
      await store.toDevice.markDelivered('o.test', '@s:o.test', old, 1_000);
      await store.toDevice.reserve({ ...message, key: old, createdTs: 1_000 });
      await store.toDevice.markPublished(old);
      await store.toDevice.reserve({ ...message, key: `${old}-unpublished`, createdTs: 1_000 });
      expect(await other.toDevice.prune(2_000)).toBeGreaterThanOrEqual(2);
      expect(await store.toDevice.wasDelivered('o.test', '@s:o.test', old)).toBe(false);
      expect(await store.toDevice.wasDelivered('o.test', '@s:o.test', key)).toBe(true);
      // Unpublished requests stay for the repair, however old.
      expect((await store.toDevice.unpublished(100_000)).map((m) => m.key)).toContain(`${old}-unpublished`);
    });
  });
}
