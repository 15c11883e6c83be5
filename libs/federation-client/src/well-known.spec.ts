import { cacheLifetimeFromHeaders, parseWellKnownBody, WellKnownCache, type WellKnownHttpResponse } from './well-known';

const HOUR = 3_600_000;
const MINUTE = 60_000;

function fakeFetch(responses: Array<WellKnownHttpResponse | Error>) {
  const calls: string[] = [];
  const fetch = async (hostname: string) => {
    calls.push(hostname);
    const next = responses.length > 1 ? responses.shift()! : responses[0];
    if (next instanceof Error) throw next;
    return next;
  };
  return { fetch, calls };
}

const ok = (body: unknown, headers: Record<string, string> = {}): WellKnownHttpResponse => ({
  status: 200,
  headers,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('parseWellKnownBody', () => {
  it.each([
    ['{"m.server":"matrix.example.org:443"}', 'matrix.example.org:443'],
    ['{"m.server":"[::1]:8448","other":1}', '[::1]:8448'],
    ['not json', undefined],
    ['[]', undefined],
    ['null', undefined],
    ['{}', undefined],
    ['{"m.server":42}', undefined],
    ['{"m.server":"bad host name"}', undefined],
    ['{"m.server":"example.org:99999"}', undefined],
  ])('%s → %j', (body, expected) => {
    expect(parseWellKnownBody(body)).toBe(expected);
  });
});

describe('cacheLifetimeFromHeaders', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it.each([
    [{ 'cache-control': 'max-age=3600' }, 3600_000],
    [{ 'cache-control': 'public, max-age=60, must-revalidate' }, 60_000],
    [{ 'cache-control': 'no-store' }, 0],
    [{ 'cache-control': 'no-cache, max-age=600' }, 0],
    [{ expires: 'Wed, 01 Jan 2025 02:00:00 GMT' }, 2 * HOUR],
    [{ expires: 'Wed, 01 Jan 2025 02:00:00 GMT', date: 'Wed, 01 Jan 2025 01:00:00 GMT' }, HOUR],
    [{ expires: '0' }, 0],
    [{ 'cache-control': 'max-age=10', expires: 'Wed, 01 Jan 2025 02:00:00 GMT' }, 10_000],
    [{}, undefined],
  ])('%j → %j', (headers, expected) => {
    expect(cacheLifetimeFromHeaders(headers, now)).toBe(expected);
  });
});

describe('WellKnownCache', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('caches a success for 24 h when no cache headers are sent', async () => {
    const { fetch, calls } = fakeFetch([ok({ 'm.server': 'delegated.example:443' })]);
    const cache = new WellKnownCache(fetch, { now: clock });
    expect(await cache.lookup('example.org')).toBe('delegated.example:443');
    now += 24 * HOUR - 1;
    expect(await cache.lookup('example.org')).toBe('delegated.example:443');
    expect(calls).toHaveLength(1);
    now += 1;
    await cache.lookup('example.org');
    expect(calls).toHaveLength(2);
  });

  it('respects Cache-Control max-age', async () => {
    const { fetch, calls } = fakeFetch([ok({ 'm.server': 'a.example' }, { 'cache-control': 'max-age=7200' })]);
    const cache = new WellKnownCache(fetch, { now: clock });
    await cache.lookup('example.org');
    now += 2 * HOUR - 1;
    await cache.lookup('example.org');
    expect(calls).toHaveLength(1);
    now += 1;
    await cache.lookup('example.org');
    expect(calls).toHaveLength(2);
  });

  it('caps a long max-age at 48 h', async () => {
    const { fetch, calls } = fakeFetch([ok({ 'm.server': 'a.example' }, { 'cache-control': 'max-age=31536000' })]);
    const cache = new WellKnownCache(fetch, { now: clock });
    await cache.lookup('example.org');
    now += 48 * HOUR;
    await cache.lookup('example.org');
    expect(calls).toHaveLength(2);
  });

  it('keeps no-store answers for the minimum lifetime only', async () => {
    const { fetch, calls } = fakeFetch([ok({ 'm.server': 'a.example' }, { 'cache-control': 'no-store' })]);
    const cache = new WellKnownCache(fetch, { now: clock, minTtlMs: 5 * MINUTE });
    await cache.lookup('example.org');
    now += 5 * MINUTE - 1;
    await cache.lookup('example.org');
    expect(calls).toHaveLength(1);
    now += 1;
    await cache.lookup('example.org');
    expect(calls).toHaveLength(2);
  });

  it.each([
    ['a transport error', new Error('ECONNREFUSED')],
    ['a 404', { status: 404, headers: {}, body: '{"m.server":"x.example"}' }],
    ['a 500', { status: 500, headers: {}, body: '' }],
    ['invalid JSON', ok('{"m.server": ')],
    ['a missing m.server', ok({ 'm.homeserver': 'x' })],
    ['a malformed m.server', ok({ 'm.server': 'not a name' })],
  ] as Array<[string, WellKnownHttpResponse | Error]>)('treats %s as "no delegation" and caches it for a shorter time', async (_what, response) => {
    const { fetch, calls } = fakeFetch([response]);
    const cache = new WellKnownCache(fetch, { now: clock, errorInitialTtlMs: 5 * MINUTE });
    expect(await cache.lookup('example.org')).toBeUndefined();
    now += 5 * MINUTE - 1;
    expect(await cache.lookup('example.org')).toBeUndefined();
    expect(calls).toHaveLength(1);
    now += 1;
    await cache.lookup('example.org');
    expect(calls).toHaveLength(2);
  });

  it('backs off exponentially on repeated failures, capped at an hour, and resets on success', async () => {
    const { fetch, calls } = fakeFetch([
      new Error('1'), new Error('2'), new Error('3'), new Error('4'), new Error('5'), new Error('6'),
      ok({ 'm.server': 'back.example' }), new Error('after success'),
    ]);
    const cache = new WellKnownCache(fetch, { now: clock, errorInitialTtlMs: 5 * MINUTE, errorMaxTtlMs: HOUR });
    const expectedTtls = [5, 10, 20, 40, 60, 60].map((m) => m * MINUTE);
    for (const ttl of expectedTtls) {
      const before = calls.length;
      await cache.lookup('example.org');
      expect(calls).toHaveLength(before + 1);
      now += ttl - 1;
      await cache.lookup('example.org');
      expect(calls).toHaveLength(before + 1);
      now += 1;
    }
    expect(await cache.lookup('example.org')).toBe('back.example');
    now += 24 * HOUR;
    const before = calls.length;
    await cache.lookup('example.org');
    expect(calls).toHaveLength(before + 1);
    now += 5 * MINUTE; // first failure after a success: initial error lifetime again
    await cache.lookup('example.org');
    expect(calls).toHaveLength(before + 2);
  });

  it('shares one fetch between concurrent lookups and keys by lower-cased hostname', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const cache = new WellKnownCache(async () => {
      calls++;
      await gate;
      return ok({ 'm.server': 'd.example' });
    }, { now: clock });
    const lookups = [cache.lookup('Example.org'), cache.lookup('example.org'), cache.lookup('EXAMPLE.ORG')];
    release();
    expect(await Promise.all(lookups)).toEqual(['d.example', 'd.example', 'd.example']);
    expect(calls).toBe(1);
  });

  it('evicts the oldest entry beyond maxEntries', async () => {
    const { fetch, calls } = fakeFetch([ok({ 'm.server': 'd.example' })]);
    const cache = new WellKnownCache(fetch, { now: clock, maxEntries: 2 });
    await cache.lookup('a.example');
    await cache.lookup('b.example');
    await cache.lookup('c.example');
    await cache.lookup('b.example');
    expect(calls).toEqual(['a.example', 'b.example', 'c.example']);
    await cache.lookup('a.example');
    expect(calls).toHaveLength(4);
  });
});
