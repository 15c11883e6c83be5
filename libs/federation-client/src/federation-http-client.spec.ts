import { once } from 'node:events';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { makeServerCertificate, makeTestCa, type TestPem } from './__fixtures__/test-tls';
import type { DnsResolver, ResolvedAddress, SrvRecord } from './dns';
import { FederationHttpError } from './errors';
import { FederationHttpClient, type FederationHttpClientOptions } from './federation-http-client';

interface SeenRequest {
  method: string;
  url: string;
  host: string | undefined;
  sni: string | false | null;
  authorization: string | undefined;
  body: string;
}

interface TestServer {
  port: number;
  seen: SeenRequest[];
  tlsConnections: () => number;
  close: () => Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, server: TestServer) => void;

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

async function startServer(pem: TestPem, handler: Handler = (_req, res) => json(res, 200, { ok: true }), host = '127.0.0.1'): Promise<TestServer> {
  let connections = 0;
  const server: Server = createHttpsServer({ cert: pem.certPem, key: pem.keyPem });
  const test: TestServer = {
    port: 0,
    seen: [],
    tlsConnections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('secureConnection', () => connections++);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      test.seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        host: req.headers.host,
        sni: (req.socket as TLSSocket).servername,
        authorization: req.headers.authorization,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      handler(req, res, test);
    });
  });
  server.listen(0, host);
  await once(server, 'listening');
  test.port = (server.address() as AddressInfo).port;
  return test;
}

async function closedPort(): Promise<number> {
  const server = createTcpServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function fakeDns(addresses: Record<string, string[]>, srv: Record<string, SrvRecord[]> = {}): DnsResolver & { lookups: string[] } {
  const lookups: string[] = [];
  return {
    lookups,
    resolveSrv: async (name) => srv[name] ?? [],
    lookup: async (hostname): Promise<ResolvedAddress[]> => {
      lookups.push(hostname);
      return (addresses[hostname] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    },
  };
}

const LOOPBACK_ALLOWED = { allow: ['127.0.0.0/8', '::1/128'] };
const SERVER_NAMES = ['fed.test', 'delegated.test', 'wk.test', 'localhost', '127.0.0.1', '::1'];

describe('FederationHttpClient over loopback HTTPS', () => {
  let trustedCa: TestPem;
  let trustedCert: TestPem;
  let untrustedCert: TestPem;
  let wrongNameCert: TestPem;
  const servers: TestServer[] = [];
  const clients: FederationHttpClient[] = [];

  beforeAll(() => {
    trustedCa = makeTestCa('fedgate federation-client test CA');
    trustedCert = makeServerCertificate(trustedCa, SERVER_NAMES);
    wrongNameCert = makeServerCertificate(trustedCa, ['someone-else.test']);
    untrustedCert = makeServerCertificate(makeTestCa('some other CA'), SERVER_NAMES);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  async function server(pem: TestPem = trustedCert, handler?: Handler, host?: string): Promise<TestServer> {
    const started = await startServer(pem, handler, host);
    servers.push(started);
    return started;
  }

  function client(options: FederationHttpClientOptions = {}): FederationHttpClient {
    const created = new FederationHttpClient({ ca: trustedCa.certPem, addressPolicy: LOOPBACK_ALLOWED, dns: fakeDns({}), ...options });
    clients.push(created);
    return created;
  }

  it('IP literal: connects to the address, Host is the server name, no SNI', async () => {
    const s = await server();
    const response = await client().getJson(`127.0.0.1:${s.port}`, '/_matrix/federation/v1/version');
    expect(response).toEqual({ status: 200, body: { ok: true } });
    expect(s.seen[0]).toMatchObject({ method: 'GET', url: '/_matrix/federation/v1/version', host: `127.0.0.1:${s.port}`, sni: false });
  });

  it('IPv6 literal in brackets', async () => {
    let s: TestServer;
    try {
      s = await server(trustedCert, undefined, '::1');
    } catch {
      return; // no IPv6 loopback in this environment
    }
    await client().getJson(`[::1]:${s.port}`, '/_matrix/federation/v1/version');
    expect(s.seen[0]).toMatchObject({ host: `[::1]:${s.port}`, sni: false });
  });

  it('hostname with port: resolves the name, connects to the checked address, Host and SNI carry the name', async () => {
    const s = await server();
    const dns = fakeDns({ 'fed.test': ['127.0.0.1'] });
    await client({ dns }).getJson(`fed.test:${s.port}`, '/_matrix/federation/v1/version');
    expect(s.seen[0]).toMatchObject({ host: `fed.test:${s.port}`, sni: 'fed.test' });
    expect(dns.lookups).toEqual(['fed.test']);
  });

  it('follows a real well-known (through a redirect) to the delegated server with its Host and SNI', async () => {
    const s = await server(trustedCert, (req, res, self) => {
      if (req.url === '/.well-known/matrix/server') {
        res.writeHead(302, { location: '/.well-known/matrix/moved' });
        res.end();
      } else if (req.url === '/.well-known/matrix/moved') {
        json(res, 200, { 'm.server': `delegated.test:${self.port}` });
      } else {
        json(res, 200, { delegated: true });
      }
    });
    const dns = fakeDns({ 'wk.test': ['127.0.0.1'], 'delegated.test': ['127.0.0.1'] });
    const c = client({ dns, wellKnownPort: s.port });
    const response = await c.getJson('wk.test', '/_matrix/federation/v1/version');
    expect(response.body).toEqual({ delegated: true });
    expect(s.seen.map((r) => [r.url, r.host, r.sni])).toEqual([
      ['/.well-known/matrix/server', `wk.test:${s.port}`, 'wk.test'],
      ['/.well-known/matrix/moved', `wk.test:${s.port}`, 'wk.test'],
      ['/_matrix/federation/v1/version', `delegated.test:${s.port}`, 'delegated.test'],
    ]);
    // cached: the second request goes straight to the delegated server
    await c.getJson('wk.test', '/_matrix/federation/v1/version');
    expect(s.seen).toHaveLength(4);
    expect(s.seen[3].url).toBe('/_matrix/federation/v1/version');
  });

  it('refuses well-known redirect loops', async () => {
    const s = await server(trustedCert, (req, res) => {
      res.writeHead(301, { location: req.url === '/.well-known/matrix/server' ? '/a' : '/.well-known/matrix/server' });
      res.end();
    });
    const c = client({ dns: fakeDns({ 'wk.test': ['127.0.0.1'] }), wellKnownPort: s.port });
    await expect(c.fetchWellKnown('wk.test')).rejects.toMatchObject({ code: 'INVALID_RESPONSE', message: expect.stringMatching(/loop/) });
  });

  it('refuses a certificate from another CA with TLS_FAILURE', async () => {
    const s = await server(untrustedCert);
    await expect(client().getJson(`127.0.0.1:${s.port}`, '/x')).rejects.toMatchObject({ code: 'TLS_FAILURE' });
    expect(s.seen).toHaveLength(0);
  });

  it('refuses a trusted certificate for the wrong name with TLS_FAILURE', async () => {
    const s = await server(wrongNameCert);
    const c = client({ dns: fakeDns({ 'fed.test': ['127.0.0.1'] }) });
    await expect(c.getJson(`fed.test:${s.port}`, '/x')).rejects.toMatchObject({ code: 'TLS_FAILURE' });
    expect(s.seen).toHaveLength(0);
  });

  describe('address policy', () => {
    it('refuses 127.0.0.1 unless allowlisted, without connecting', async () => {
      const s = await server();
      const strict = client({ addressPolicy: {} });
      await expect(strict.getJson(`127.0.0.1:${s.port}`, '/x')).rejects.toMatchObject({ code: 'ADDRESS_REFUSED' });
      expect(s.tlsConnections()).toBe(0);
      await client().getJson(`127.0.0.1:${s.port}`, '/x');
      expect(s.tlsConnections()).toBe(1);
    });

    it('refuses a name that resolves to a private address', async () => {
      const s = await server();
      const dns = fakeDns({ 'innocent.test': ['127.0.0.1'], 'intranet.test': ['10.0.0.7'] });
      const c = client({ dns, addressPolicy: { allow: ['192.0.2.0/24'] } });
      await expect(c.getJson(`innocent.test:${s.port}`, '/x')).rejects.toMatchObject({ code: 'ADDRESS_REFUSED' });
      await expect(c.getJson(`intranet.test:${s.port}`, '/x')).rejects.toMatchObject({ code: 'ADDRESS_REFUSED' });
      expect(s.tlsConnections()).toBe(0);
    });

    it('refuses the well-known fetch itself to a private address and falls back to 8448, also refused', async () => {
      const s = await server();
      const c = client({ dns: fakeDns({ 'wk.test': ['169.254.169.254'] }), wellKnownPort: s.port });
      await expect(c.getJson('wk.test', '/x')).rejects.toMatchObject({ code: 'ADDRESS_REFUSED' });
      expect(s.seen).toHaveLength(0);
    });

    it('skips a refused address and uses the next allowed one of the same name', async () => {
      const s = await server();
      const c = client({ dns: fakeDns({ 'fed.test': ['10.0.0.1', '127.0.0.1'] }) });
      await expect(c.getJson(`fed.test:${s.port}`, '/x')).resolves.toMatchObject({ status: 200 });
    });
  });

  it('reports a Matrix error answer as FederationHttpError with status and errcode', async () => {
    const s = await server(trustedCert, (_req, res) => json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }));
    const failure = await client().getJson(`127.0.0.1:${s.port}`, '/_matrix/federation/v1/nope').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(FederationHttpError);
    expect(failure).toMatchObject({ code: 'HTTP_ERROR', status: 404, errcode: 'M_UNRECOGNIZED' });
  });

  it('reports a non-JSON 200 as INVALID_RESPONSE', async () => {
    const s = await server(trustedCert, (_req, res) => res.end('<html>'));
    await expect(client().getJson(`127.0.0.1:${s.port}`, '/x')).rejects.toMatchObject({ code: 'INVALID_RESPONSE' });
  });

  it('times out a peer that never answers', async () => {
    const s = await server(trustedCert, () => undefined);
    await expect(client({ requestTimeoutMs: 300 }).getJson(`127.0.0.1:${s.port}`, '/x')).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('reports a closed port as UNREACHABLE', async () => {
    const port = await closedPort();
    await expect(client().getJson(`127.0.0.1:${port}`, '/x')).rejects.toMatchObject({ code: 'UNREACHABLE' });
  });

  it('falls through to the next discovered target when one cannot be connected to', async () => {
    const s = await server();
    const dead = await closedPort();
    const c = client({
      resolveServerName: async () => [
        { connectHost: '127.0.0.1', port: dead, hostHeader: 'fed.test', tlsServerName: 'fed.test' },
        { connectHost: '127.0.0.1', port: s.port, hostHeader: 'fed.test', tlsServerName: 'fed.test' },
      ],
    });
    await expect(c.getJson('fed.test', '/x')).resolves.toMatchObject({ status: 200 });
    expect(s.seen[0]).toMatchObject({ host: 'fed.test', sni: 'fed.test' });
  });

  it('enforces the response size limit, declared or streamed', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(4096) });
    const declared = await server(trustedCert, (_req, res) => res.end(big));
    const streamed = await server(trustedCert, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(big.slice(0, 2000));
      res.end(big.slice(2000));
    });
    const c = client({ maxResponseBytes: 1024 });
    await expect(c.getJson(`127.0.0.1:${declared.port}`, '/x')).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
    await expect(c.getJson(`127.0.0.1:${streamed.port}`, '/x')).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
  });

  it('signs with the injected signer (server name before delegation, path with query) and sends JSON', async () => {
    const s = await server(trustedCert, (req, res) => json(res, 200, { echoed: req.method }));
    const calls: unknown[][] = [];
    const c = client({
      signRequest: (method, uri, destination, content) => {
        calls.push([method, uri, destination, content]);
        return 'X-Matrix origin="us.test",destination="them",key="ed25519:a",sig="s"';
      },
    });
    const destination = `127.0.0.1:${s.port}`;
    const response = await c.putJson(destination, '/_matrix/federation/v1/send/txn1', { pdus: [], edus: [] }, { query: { a: 'b c', n: [1, 2] } });
    expect(response).toEqual({ status: 200, body: { echoed: 'PUT' } });
    expect(calls).toEqual([['PUT', '/_matrix/federation/v1/send/txn1?a=b+c&n=1&n=2', destination, { pdus: [], edus: [] }]]);
    expect(s.seen[0]).toMatchObject({
      url: '/_matrix/federation/v1/send/txn1?a=b+c&n=1&n=2',
      authorization: 'X-Matrix origin="us.test",destination="them",key="ed25519:a",sig="s"',
      body: '{"pdus":[],"edus":[]}',
    });
    await c.postJson(destination, '/_matrix/federation/v1/user/keys/query', undefined);
    expect(s.seen[1]).toMatchObject({ method: 'POST', body: '{}' });
    expect(calls[1]).toEqual(['POST', '/_matrix/federation/v1/user/keys/query', destination, {}]);
  });

  it('fetches server keys and queries a notary, unsigned, returning the raw JSON', async () => {
    const keys = { server_name: 'x', verify_keys: {}, valid_until_ts: 1 };
    const s = await server(trustedCert, (req, res) => json(res, 200, req.url === '/_matrix/key/v2/server' ? keys : { server_keys: [keys] }));
    const signer = jest.fn(() => 'X-Matrix ...');
    const c = client({ signRequest: signer });
    expect(await c.fetchServerKeys(`127.0.0.1:${s.port}`)).toEqual(keys);
    const query = { server_keys: { 'other.test': { 'ed25519:a': { minimum_valid_until_ts: 5 } } } };
    expect(await c.queryKeysViaNotary(`127.0.0.1:${s.port}`, query)).toEqual({ server_keys: [keys] });
    expect(s.seen.map((r) => [r.method, r.url, r.authorization])).toEqual([
      ['GET', '/_matrix/key/v2/server', undefined],
      ['POST', '/_matrix/key/v2/query', undefined],
    ]);
    expect(JSON.parse(s.seen[1].body)).toEqual(query);
    expect(signer).not.toHaveBeenCalled();
  });

  it('reuses pooled TLS connections per destination address', async () => {
    const s = await server();
    const c = client();
    for (let i = 0; i < 10; i++) await c.getJson(`127.0.0.1:${s.port}`, '/x');
    // undici may open a second socket when a request is dispatched in the tick before the
    // previous one has released its connection; it never opens one per request.
    expect(s.tlsConnections()).toBeLessThanOrEqual(2);
  });
});

describe('FederationHttpClient discovery cache', () => {
  it('issue 19: a server name without port or well-known has its SRV records looked up once for many requests, not twice per request', async () => {
    const queries: string[] = [];
    const client = new FederationHttpClient({
      dns: { resolveSrv: async (name) => (queries.push(name), []), lookup: async () => [] }, // no well-known reachable: no addresses
      addressPolicy: { allow: ['127.0.0.0/8'] },
    });
    try {
      for (let i = 0; i < 3; i++) {
        expect(await client.resolveServerName('example.org')).toEqual([{ connectHost: 'example.org', port: 8448, hostHeader: 'example.org', tlsServerName: 'example.org' }]);
      }
      expect(queries).toEqual(['_matrix-fed._tcp.example.org', '_matrix._tcp.example.org']);
    } finally {
      await client.close();
    }
  });
});
