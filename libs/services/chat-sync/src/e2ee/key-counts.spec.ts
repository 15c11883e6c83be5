// Issue 13, MSC3202: the key counts a transaction carries are those of the service's own users in it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore, type Store } from '@fedgate/store';
import { ApplicationServiceRegistry } from '../registration';
import { keyCountsFor } from './key-counts';

const registry = new ApplicationServiceRegistry(
  [
    {
      id: 'chat',
      url: 'http://bridge.invalid',
      asToken: 'as',
      hsToken: 'hs',
      senderLocalpart: 'chat_bot',
      namespaces: { users: [{ regex: '@chat_.*:gw\\.test', exclusive: true }], aliases: [], rooms: [] },
      rateLimited: false,
      receiveEphemeral: true,
      msc3202: true,
      protocols: [],
      source: 'test',
    },
  ],
  'gw.test',
);

describe('MSC3202 key counts (issue 13)', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'key-counts-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts one-time keys and unused fallback key types per device of the service\'s users who sent its events or receive its to-device messages', async () => {
    const alice = '@chat_alice:gw.test';
    const bob = '@chat_bob:gw.test';
    await store.deviceKeys.putDevice(alice, 'PHONE');
    await store.deviceKeys.addOneTimeKeys(alice, 'PHONE', { 'signed_curve25519:A': { key: 'a' }, 'signed_curve25519:B': { key: 'b' } });
    await store.deviceKeys.setFallbackKeys(alice, 'PHONE', { 'signed_curve25519:F': { key: 'f' } });
    await store.deviceKeys.putDevice(bob, 'TABLET');
    await store.deviceKeys.putDevice('@chat_carol:gw.test', 'X');
    const counts = await keyCountsFor(store, registry.services[0]!, {
      txnId: '1',
      events: [{ sender: alice }, { sender: '@someone:remote.test' }],
      ephemeral: [],
      toDevice: [{ to_user_id: bob, to_device_id: 'TABLET' }],
    });
    expect(counts).toEqual({
      oneTimeKeys: { [alice]: { PHONE: { signed_curve25519: 2 } }, [bob]: { TABLET: { signed_curve25519: 0 } } },
      unusedFallbackKeyTypes: { [alice]: { PHONE: ['signed_curve25519'] }, [bob]: { TABLET: [] } },
    });
  });
});
