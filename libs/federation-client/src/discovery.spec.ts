import type { SrvRecord } from './dns';
import { cachedSrvResolver, resolveServerName, type DiscoveryDeps } from './discovery';
import { FederationClientError } from './errors';

function deps(options: { wellKnown?: Record<string, string>; srv?: Record<string, SrvRecord[]> }) {
  const srvQueries: string[] = [];
  const wellKnownQueries: string[] = [];
  const d: DiscoveryDeps = {
    dns: {
      resolveSrv: async (name) => {
        srvQueries.push(name);
        return options.srv?.[name] ?? [];
      },
    },
    wellKnown: {
      lookup: async (hostname) => {
        wellKnownQueries.push(hostname);
        return options.wellKnown?.[hostname];
      },
    },
    random: () => 0,
  };
  return { deps: d, srvQueries, wellKnownQueries };
}

const srv = (name: string, port: number, priority = 10, weight = 0): SrvRecord => ({ name, port, priority, weight });

describe('resolveServerName', () => {
  describe('step 1: IP literal', () => {
    it.each([
      ['1.2.3.4', '1.2.3.4', 8448],
      ['1.2.3.4:8080', '1.2.3.4', 8080],
      ['[2001:db8::1]', '2001:db8::1', 8448],
      ['[2001:db8::1]:443', '2001:db8::1', 443],
    ])('%s connects to the address, Host is the server name, no SNI', async (serverName, host, port) => {
      const { deps: d, srvQueries, wellKnownQueries } = deps({});
      expect(await resolveServerName(serverName, d)).toEqual([{ connectHost: host, port, hostHeader: serverName, tlsServerName: null }]);
      expect(srvQueries).toEqual([]);
      expect(wellKnownQueries).toEqual([]);
    });
  });

  it('step 2: hostname with explicit port goes straight there, certificate for the hostname', async () => {
    const { deps: d, srvQueries, wellKnownQueries } = deps({ wellKnown: { 'example.org': 'elsewhere.org' } });
    expect(await resolveServerName('example.org:1234', d)).toEqual([
      { connectHost: 'example.org', port: 1234, hostHeader: 'example.org:1234', tlsServerName: 'example.org' },
    ]);
    expect(srvQueries).toEqual([]);
    expect(wellKnownQueries).toEqual([]);
  });

  describe('step 3: well-known delegation', () => {
    it('3.1 delegated IP literal: that address, Host is the delegated value, no SNI', async () => {
      const { deps: d } = deps({ wellKnown: { 'example.org': '[2001:db8::5]:9000' } });
      expect(await resolveServerName('example.org', d)).toEqual([
        { connectHost: '2001:db8::5', port: 9000, hostHeader: '[2001:db8::5]:9000', tlsServerName: null },
      ]);
    });

    it('3.1 delegated IP literal without port uses 8448', async () => {
      const { deps: d } = deps({ wellKnown: { 'example.org': '5.6.7.8' } });
      expect(await resolveServerName('example.org', d)).toEqual([{ connectHost: '5.6.7.8', port: 8448, hostHeader: '5.6.7.8', tlsServerName: null }]);
    });

    it('3.2 delegated hostname with port: no SRV, Host is delegated host:port', async () => {
      const { deps: d, srvQueries } = deps({
        wellKnown: { 'example.org': 'matrix.example.net:8443' },
        srv: { '_matrix-fed._tcp.matrix.example.net': [srv('wrong.example', 1)] },
      });
      expect(await resolveServerName('example.org', d)).toEqual([
        { connectHost: 'matrix.example.net', port: 8443, hostHeader: 'matrix.example.net:8443', tlsServerName: 'matrix.example.net' },
      ]);
      expect(srvQueries).toEqual([]);
    });

    it('3.3 delegated hostname without port: _matrix-fed SRV, Host and certificate are the delegated hostname', async () => {
      const { deps: d, srvQueries } = deps({
        wellKnown: { 'example.org': 'matrix.example.net' },
        srv: {
          '_matrix-fed._tcp.matrix.example.net': [srv('backend.example.net.', 8449)],
          '_matrix._tcp.matrix.example.net': [srv('old.example.net', 1)],
        },
      });
      expect(await resolveServerName('example.org', d)).toEqual([
        { connectHost: 'backend.example.net', port: 8449, hostHeader: 'matrix.example.net', tlsServerName: 'matrix.example.net' },
      ]);
      expect(srvQueries).toEqual(['_matrix-fed._tcp.matrix.example.net']);
    });

    it('3.4 falls back to the deprecated _matrix SRV of the delegated hostname', async () => {
      const { deps: d, srvQueries } = deps({
        wellKnown: { 'example.org': 'matrix.example.net' },
        srv: { '_matrix._tcp.matrix.example.net': [srv('old.example.net', 8000)] },
      });
      expect(await resolveServerName('example.org', d)).toEqual([
        { connectHost: 'old.example.net', port: 8000, hostHeader: 'matrix.example.net', tlsServerName: 'matrix.example.net' },
      ]);
      expect(srvQueries).toEqual(['_matrix-fed._tcp.matrix.example.net', '_matrix._tcp.matrix.example.net']);
    });

    it('3.5 no SRV: the delegated hostname on 8448', async () => {
      const { deps: d } = deps({ wellKnown: { 'example.org': 'matrix.example.net' } });
      expect(await resolveServerName('example.org', d)).toEqual([
        { connectHost: 'matrix.example.net', port: 8448, hostHeader: 'matrix.example.net', tlsServerName: 'matrix.example.net' },
      ]);
    });

    it('never looks at SRV records of the original hostname once delegated', async () => {
      const { deps: d, srvQueries } = deps({
        wellKnown: { 'example.org': 'matrix.example.net' },
        srv: { '_matrix-fed._tcp.example.org': [srv('wrong.example', 1)] },
      });
      await resolveServerName('example.org', d);
      expect(srvQueries.some((q) => q.endsWith('example.org'))).toBe(false);
    });
  });

  describe('steps 4–6: no usable well-known', () => {
    it('4: _matrix-fed SRV of the hostname; Host and certificate stay the hostname', async () => {
      const { deps: d, srvQueries } = deps({ srv: { '_matrix-fed._tcp.example.org': [srv('fed.example.org', 8450)] } });
      expect(await resolveServerName('example.org', d)).toEqual([
        { connectHost: 'fed.example.org', port: 8450, hostHeader: 'example.org', tlsServerName: 'example.org' },
      ]);
      expect(srvQueries).toEqual(['_matrix-fed._tcp.example.org']);
    });

    it('5: deprecated _matrix SRV when _matrix-fed has none', async () => {
      const { deps: d } = deps({ srv: { '_matrix._tcp.example.org': [srv('legacy.example.org', 8008)] } });
      expect(await resolveServerName('example.org', d)).toEqual([
        { connectHost: 'legacy.example.org', port: 8008, hostHeader: 'example.org', tlsServerName: 'example.org' },
      ]);
    });

    it('5: an SRV answer of "." (service absent) counts as none', async () => {
      const { deps: d } = deps({ srv: { '_matrix-fed._tcp.example.org': [srv('.', 0)], '_matrix._tcp.example.org': [srv('legacy.example.org', 8008)] } });
      expect((await resolveServerName('example.org', d))[0].connectHost).toBe('legacy.example.org');
    });

    it('6: no SRV at all: the hostname on 8448', async () => {
      const { deps: d, srvQueries } = deps({});
      expect(await resolveServerName('example.org', d)).toEqual([
        { connectHost: 'example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org' },
      ]);
      expect(srvQueries).toEqual(['_matrix-fed._tcp.example.org', '_matrix._tcp.example.org']);
    });

    it('returns every SRV target ordered by priority', async () => {
      const { deps: d } = deps({
        srv: { '_matrix-fed._tcp.example.org': [srv('c.example.org', 3, 30), srv('a.example.org', 1, 10), srv('b.example.org', 2, 20)] },
      });
      expect((await resolveServerName('example.org', d)).map((t) => t.connectHost)).toEqual(['a.example.org', 'b.example.org', 'c.example.org']);
    });
  });

  it('propagates DNS failures other than "no records"', async () => {
    const failing: DiscoveryDeps = {
      dns: { resolveSrv: async () => Promise.reject(new FederationClientError('DNS_FAILURE', 'SERVFAIL')) },
      wellKnown: { lookup: async () => undefined },
    };
    await expect(resolveServerName('example.org', failing)).rejects.toMatchObject({ code: 'DNS_FAILURE' });
  });

  it.each(['', 'exa mple.org', 'example.org:', 'example.org:0', 'example.org:70000', '[::1', '[::1]x', '300.1.1.1', '[fe80::1%eth0]'])(
    'rejects the malformed server name %j',
    async (serverName) => {
      await expect(resolveServerName(serverName, deps({}).deps)).rejects.toMatchObject({ code: 'INVALID_SERVER_NAME' });
    },
  );
});

describe('cachedSrvResolver (issue 19: discovery results cached)', () => {
  it('asks DNS once per name within the TTL (records and "no records" alike), again after it, and never keeps a failed lookup', async () => {
    let clock = 1_700_000_000_000;
    const queries: string[] = [];
    let failing = false;
    const cached = cachedSrvResolver(
      {
        resolveSrv: async (name) => {
          queries.push(name);
          if (failing) throw new FederationClientError('DNS_FAILURE', `SRV lookup for ${name} failed`);
          return name === '_matrix-fed._tcp.example.org' ? [srv('fed.example.org', 8448)] : [];
        },
      },
      { ttlMs: 60_000, now: () => clock },
    );
    const d: DiscoveryDeps = { dns: cached, wellKnown: { lookup: async () => undefined }, random: () => 0 };
    for (let i = 0; i < 3; i++) {
      expect(await resolveServerName('example.org', d)).toEqual([{ connectHost: 'fed.example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org' }]);
      expect(await resolveServerName('plain.org', d)).toEqual([{ connectHost: 'plain.org', port: 8448, hostHeader: 'plain.org', tlsServerName: 'plain.org' }]);
    }
    expect(queries).toEqual(['_matrix-fed._tcp.example.org', '_matrix-fed._tcp.plain.org', '_matrix._tcp.plain.org']);
    clock += 60_001;
    failing = true;
    await expect(resolveServerName('example.org', d)).rejects.toMatchObject({ code: 'DNS_FAILURE' });
    await expect(resolveServerName('example.org', d)).rejects.toMatchObject({ code: 'DNS_FAILURE' });
    expect(queries.filter((q) => q === '_matrix-fed._tcp.example.org')).toHaveLength(3); // expired, then each failure asked again
    failing = false;
    await resolveServerName('example.org', d);
    await resolveServerName('example.org', d);
    expect(queries.filter((q) => q === '_matrix-fed._tcp.example.org')).toHaveLength(4);
  });

  it('keeps the records, not their order: the weighted draw among equal priorities is made per resolution', async () => {
    const cached = cachedSrvResolver({ resolveSrv: async () => [srv('a.example.org', 8448, 10, 50), srv('b.example.org', 8448, 10, 50)] });
    const draws = [0, 0, 0.99, 0]; // two per resolution: the first pick, then the one left
    const d: DiscoveryDeps = { dns: cached, wellKnown: { lookup: async () => undefined }, random: () => draws.shift() ?? 0 };
    const first = (await resolveServerName('example.org', d))[0]!.connectHost;
    const second = (await resolveServerName('example.org', d))[0]!.connectHost;
    expect(new Set([first, second])).toEqual(new Set(['a.example.org', 'b.example.org']));
  });
});
