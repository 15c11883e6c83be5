// Issue 11 defect 5 and the resource budget: forged X-Matrix origins and notary queries from the internet
// cannot grow the key ring's memory or make it fetch faster than configured. Real HTTPS sockets from
// 40 client addresses (127.0.0.x), the real StoreKeyRing, a counting fake for the outbound fetches.
import { request as httpsRequest, Agent } from 'node:https';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { StoreKeyRing, type KeyFetcher } from '@fedgate/federation-client';
import { startIngress, INGRESS_NAME, type IngressHarness } from '../__fixtures__/ingress-harness';

jest.setTimeout(180_000);

const LIMITS = { perAddressBurst: 5, perAddressPerMinute: 30, perSecond: 20, maxAddresses: 1_000 };
const MAX_CACHED_SERVERS = 1_000;
/** The stated bound: RSS grows by less than this over the whole flood. */
const RSS_BUDGET_BYTES = 256 * 1024 * 1024;
const ADDRESSES = Array.from({ length: 40 }, (_, i) => `127.0.0.${i + 2}`);
/** And the live heap (after a full collection) by less than this. */
const HEAP_BUDGET_BYTES = 64 * 1024 * 1024;
const SIG = 'A'.repeat(86);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('key ring resource budget at the federation edge (issue 11 defect 5)', () => {
  let h: IngressHarness;
  let keyRing: StoreKeyRing;
  const fetches: { server: string; at: number }[] = [];
  let fetchDelayMs = 0;
  const agents = new Map<string, Agent>();
  let ca: string;

  beforeAll(async () => {
    const fetcher: KeyFetcher = {
      fetchServerKeys: async (server) => {
        fetches.push({ server, at: Date.now() });
        if (fetchDelayMs) await new Promise((resolve) => setTimeout(resolve, fetchDelayMs));
        throw new Error('no such server');
      },
      queryKeysViaNotary: async () => ({ server_keys: [] }),
    };
    h = await startIngress({}, {
      keyRing: (store) =>
        (keyRing = new StoreKeyRing({ serverKeys: store.serverKeys, fetcher, ownServerName: INGRESS_NAME, ownKeys: () => [], maxCachedServers: MAX_CACHED_SERVERS, fetchLimits: LIMITS })),
    });
    ca = (h as unknown as { caPem?: string }).caPem ?? '';
  });
  afterAll(async () => {
    for (const agent of agents.values()) agent.destroy();
    await h?.close();
  });

  const call = (from: string, method: string, path: string, headers: Record<string, string>, body?: string, signal?: AbortSignal) =>
    new Promise<number>((resolve, reject) => {
      let agent = agents.get(from);
      if (!agent) agents.set(from, (agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress: from, rejectUnauthorized: false })));
      const url = new URL(h.federationUrl);
      const req = httpsRequest({ host: '127.0.0.1', port: Number(url.port), method, path, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, agent, ca, signal }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('after 10,000 forged origins and 1,000 notary queries: bounded memory, no fetch over the budget, no 5xx', async () => {
    gc();
    const before = process.memoryUsage();
    const started = Date.now();
    const statuses = new Map<number, number>();
    const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
    await Promise.all(
      ADDRESSES.map(async (from, a) => {
        for (let i = 0; i < 250; i++) {
          const origin = `forged-${a}-${i}.example`;
          const authorization = `X-Matrix origin="${origin}",destination="${INGRESS_NAME}",key="ed25519:k${i}",sig="${SIG}"`;
          count(await call(from, 'GET', `/_matrix/federation/v1/event/%24e${i}`, { authorization }));
        }
        for (let q = 0; q < 25; q++) {
          const servers = Object.fromEntries(Array.from({ length: 100 }, (_, s) => [`notary-${a}-${q}-${s}.example`, {}]));
          count(await call(from, 'POST', '/_matrix/key/v2/query', {}, JSON.stringify({ server_keys: servers })));
        }
      }),
    );
    const elapsedMs = Date.now() - started;
    gc();
    const after = process.memoryUsage();
    const rssGrowth = after.rss - before.rss;
    const heapGrowth = after.heapUsed - before.heapUsed;

    expect(Object.fromEntries(statuses)).toEqual({ 401: 10_000, 200: 1_000 });
    expect(rssGrowth).toBeLessThan(RSS_BUDGET_BYTES);
    expect(heapGrowth).toBeLessThan(HEAP_BUDGET_BYTES);
    const stats = keyRing.stats();
    expect(stats.cachedServers).toBeLessThanOrEqual(MAX_CACHED_SERVERS);
    expect(stats.documents).toBeLessThanOrEqual(MAX_CACHED_SERVERS);
    expect(stats.negative).toBeLessThanOrEqual(MAX_CACHED_SERVERS);
    expect(stats.trackedAddresses).toBeLessThanOrEqual(LIMITS.maxAddresses);
    // Whole run: no more fetches than the budget allowed for its length.
    expect(fetches.length).toBeLessThanOrEqual(LIMITS.perSecond * (1 + elapsedMs / 1_000));
    // Any one-second window: at most the global burst plus one second's refill.
    const times = fetches.map((f) => f.at).sort((x, y) => x - y);
    let windowStart = 0;
    for (let i = 0; i < times.length; i++) {
      while (times[i] - times[windowStart] >= 1_000) windowStart++;
      expect(i - windowStart + 1).toBeLessThanOrEqual(2 * LIMITS.perSecond);
    }
    process.stdout.write(`key budget: ${fetches.length} fetches in ${elapsedMs} ms, RSS +${Math.round(rssGrowth / 1024 / 1024)} MB, heap +${Math.round(heapGrowth / 1024 / 1024)} MB, ${JSON.stringify(stats)}\n`);
  });

  it('refuses a notary query naming more servers than the cap with 400 M_INVALID_PARAM', async () => {
    const servers = Object.fromEntries(Array.from({ length: 101 }, (_, s) => [`cap-${s}.example`, {}]));
    expect(await call(ADDRESSES[0], 'POST', '/_matrix/key/v2/query', {}, JSON.stringify({ server_keys: servers }))).toBe(400);
  });

  it('stops resolving a notary query once its client has gone (issue 11 defect 11)', async () => {
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // let the address budget refill
    fetchDelayMs = 400;
    const before = fetches.length;
    const from = '127.0.0.200';
    const servers = Object.fromEntries(Array.from({ length: 100 }, (_, s) => [`gone-${s}.example`, {}]));
    const abort = new AbortController();
    const answered = call(from, 'POST', '/_matrix/key/v2/query', {}, JSON.stringify({ server_keys: servers }), abort.signal).catch(() => 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 500));
    abort.abort();
    expect(await answered).toBe('aborted');
    const atAbort = fetches.length;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(fetches.length - atAbort).toBeLessThanOrEqual(1);
    expect(atAbort - before).toBeGreaterThan(0);
  });
});
