// Issue 11 defect 5: each forged X-Matrix origin added entries to unbounded maps and caused a fetch, before
// authentication. The key ring's memory is bounded and fetches caused from the internet are budgeted.
import { buildServerKeyDocument, generateSigningKey } from '@fedgate/protocol';
import type { RemoteServerKey } from '@fedgate/store';
import { StoreKeyRing } from './store-key-ring';

function fakeStoreKeys() {
  const rows: RemoteServerKey[] = [];
  return {
    putRemote: async (added: RemoteServerKey[]) => void rows.push(...added),
    listRemote: async (serverName: string) => rows.filter((r) => r.serverName === serverName),
  };
}

describe('key ring bounds (issue 11 defect 5)', () => {
  let now: number;
  let fetched: string[];

  const ring = (options: Partial<ConstructorParameters<typeof StoreKeyRing>[0]> = {}) =>
    new StoreKeyRing({
      serverKeys: fakeStoreKeys(),
      fetcher: {
        fetchServerKeys: async (serverName) => {
          fetched.push(serverName);
          throw new Error('unreachable');
        },
        queryKeysViaNotary: async () => ({ server_keys: [] }),
      },
      ownServerName: 'own.test',
      ownKeys: () => [],
      now: () => now,
      ...options,
    });

  beforeEach(() => {
    now = 1_000_000;
    fetched = [];
  });

  it('holds at most maxCachedServers servers however many forged origins are looked up', async () => {
    const keyRing = ring({ maxCachedServers: 50, fetchLimits: { perAddressBurst: 1e9, perAddressPerMinute: 1e9, perSecond: 1e9, maxAddresses: 10 } });
    for (let i = 0; i < 500; i++) await keyRing.prepare([{ serverName: `forged${i}.test`, keyIds: [`ed25519:k${i}`] }], { clientAddress: `10.0.${i % 250}.1` });
    const stats = keyRing.stats();
    expect(stats.cachedServers).toBeLessThanOrEqual(50);
    expect(stats.negative).toBeLessThanOrEqual(50);
    expect(stats.documents).toBeLessThanOrEqual(50);
    expect(stats.inFlight).toBe(0);
    expect(stats.trackedAddresses).toBeLessThanOrEqual(10);
    expect(fetched).toHaveLength(500);
  });

  it('limits the fetches one client address may cause, and all addresses together', async () => {
    const refused: string[] = [];
    const keyRing = ring({
      fetchLimits: { perAddressBurst: 3, perAddressPerMinute: 60, perSecond: 5, maxAddresses: 100 },
      onFetchRefused: (_server, address, reason) => refused.push(`${address} ${reason}`),
    });
    for (let i = 0; i < 10; i++) await keyRing.prepare([{ serverName: `a${i}.test` }], { clientAddress: '192.0.2.1' });
    expect(fetched).toHaveLength(3);
    expect(refused).toHaveLength(7);
    expect(refused[0]).toBe('192.0.2.1 address_rate');
    // Other addresses have their own budget, until the global one is spent.
    for (let i = 0; i < 5; i++) await keyRing.prepare([{ serverName: `b${i}.test` }], { clientAddress: `192.0.2.${10 + i}` });
    expect(fetched).toHaveLength(5);
    expect(refused.at(-1)).toMatch(/global_rate$/);
    // Budgets refill with time: one second later the global budget is full again, the address has one more.
    now += 1_000;
    await keyRing.prepare([{ serverName: 'c.test' }], { clientAddress: '192.0.2.1' });
    expect(fetched).toHaveLength(6);
    // Lookups of our own making (no client address: verifying stored or fetched events) are not budgeted.
    for (let i = 0; i < 10; i++) await keyRing.prepare([{ serverName: `internal${i}.test` }]);
    expect(fetched).toHaveLength(16);
  });

  it('budgets notary lookups too, and remembers a server that could not be fetched', async () => {
    const keyRing = ring({ fetchLimits: { perAddressBurst: 2, perAddressPerMinute: 1, perSecond: 100, maxAddresses: 100 } });
    for (let i = 0; i < 5; i++) expect(await keyRing.serverKeyDocuments(`n${i}.test`, undefined, { clientAddress: '198.51.100.7' })).toEqual([]);
    expect(fetched).toEqual(['n0.test', 'n1.test']);
    expect(await keyRing.serverKeyDocuments('n0.test', undefined, { clientAddress: '198.51.100.8' })).toEqual([]);
    expect(fetched).toHaveLength(2);
  });

  it('still serves keys it could fetch', async () => {
    const key = generateSigningKey('k');
    const keyRing = new StoreKeyRing({
      serverKeys: fakeStoreKeys(),
      fetcher: { fetchServerKeys: async () => buildServerKeyDocument({ serverName: 'real.test', keys: [key], validUntilTs: Date.now() + 86_400_000 }), queryKeysViaNotary: async () => ({}) },
      ownServerName: 'own.test',
      ownKeys: () => [],
    });
    const lookup = await keyRing.prepare([{ serverName: 'real.test', keyIds: [key.keyId] }], { clientAddress: '203.0.113.1' });
    expect(lookup('real.test', key.keyId)?.publicKeyBase64).toBe(key.verifyKey().publicKeyBase64);
  });
});

