// Follow-up to issue 11: the request's timeout bounds the whole request, connecting and the TLS handshake
// included; before, only the connect timeout (10 s by default) applied until the handshake was done.
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import { makeServerCertificate, makeTestCa } from './__fixtures__/test-tls';
import { HttpsTransport } from './https-transport';

const HOUR = 3_600_000;

/** Accepts TCP connections and never says a word (no TLS server hello). */
async function silentTcpServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.resume(); // reads (and drops) the client hello, so it sees the client hang up
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

function transport(connectTimeoutMs: number): HttpsTransport {
  return new HttpsTransport({
    dns: { lookup: async () => [] },
    addressPolicy: { isAllowed: () => true } as never,
    connectTimeoutMs,
    connectionsPerAddress: 1,
    keepAliveTimeoutMs: 1000,
    maxPools: 4,
  });
}

const request = { method: 'GET', uri: '/_matrix/federation/v1/version', headers: {}, timeoutMs: 400, maxResponseBytes: 1024 };

describe('HttpsTransport request timeout', () => {
  it('a peer that accepts TCP and never speaks TLS: the request ends with TIMEOUT at its own timeout, not the (hour-long) connect timeout, and the socket is closed', async () => {
    const silent = await silentTcpServer();
    const t = transport(HOUR);
    try {
      const target = { connectHost: '127.0.0.1', port: silent.port, hostHeader: 'silent.test', tlsServerName: 'silent.test' };
      await expect(t.send([target], request)).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(silent.sockets).toHaveLength(1);
      if (!silent.sockets[0].closed) await once(silent.sockets[0], 'close');
    } finally {
      await t.close();
      silent.server.close();
    }
  });

  it('a second target is not tried once the request timed out during the first one\'s handshake', async () => {
    const silent = await silentTcpServer();
    const other = await silentTcpServer();
    const t = transport(HOUR);
    try {
      const target = (port: number) => ({ connectHost: '127.0.0.1', port, hostHeader: 'silent.test', tlsServerName: 'silent.test' });
      await expect(t.send([target(silent.port), target(other.port)], request)).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(other.sockets).toHaveLength(0);
    } finally {
      await t.close();
      silent.server.close();
      other.server.close();
    }
  });
});

describe('HttpsTransport TLS context', () => {
  it('issue 19: builds the TLS context (the configured CA parsed) once, not once per connection: three destinations connect with one', async () => {
    const ca = makeTestCa('transport context test CA');
    const pem = makeServerCertificate(ca, ['localhost']);
    const servers = await Promise.all(
      [0, 1, 2].map(async () => {
        const server = createHttpsServer({ cert: pem.certPem, key: pem.keyPem }, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        return server;
      }),
    );
    const built = jest.spyOn(tls, 'createSecureContext');
    const t = new HttpsTransport({ dns: { lookup: async () => [] }, addressPolicy: { isAllowed: () => true } as never, ca: ca.certPem, connectTimeoutMs: 5_000, connectionsPerAddress: 1, keepAliveTimeoutMs: 1_000, maxPools: 8 });
    try {
      for (const server of servers) {
        const target = { connectHost: '127.0.0.1', port: (server.address() as AddressInfo).port, hostHeader: 'localhost', tlsServerName: 'localhost' };
        expect((await t.send([target], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      }
      expect(built.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      built.mockRestore();
      await t.close();
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
    }
  });
});

describe('HttpsTransport address lookups', () => {
  it('issue 19: looks a name up once for many requests, and again after connecting to its addresses failed', async () => {
    const ca = makeTestCa('transport lookup test CA');
    const pem = makeServerCertificate(ca, ['named.test']);
    const server = createHttpsServer({ cert: pem.certPem, key: pem.keyPem }, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const lookups: string[] = [];
    const t = new HttpsTransport({
      dns: { lookup: async (host) => (lookups.push(host), [{ address: '127.0.0.1', family: 4 }]) },
      addressPolicy: { isAllowed: () => true } as never,
      ca: ca.certPem,
      connectTimeoutMs: 5_000,
      connectionsPerAddress: 1,
      keepAliveTimeoutMs: 1_000,
      maxPools: 8,
    });
    const target = { connectHost: 'named.test', port, hostHeader: 'named.test', tlsServerName: 'named.test' };
    try {
      for (let i = 0; i < 3; i++) expect((await t.send([target], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      expect(lookups).toEqual(['named.test']);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await expect(t.send([target], { ...request, timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'UNREACHABLE' });
      expect(lookups).toEqual(['named.test']); // the failed request used the addresses known; the next one looks again
      await expect(t.send([target], { ...request, timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'UNREACHABLE' });
      expect(lookups).toEqual(['named.test', 'named.test']);
    } finally {
      await t.close();
      server.close();
    }
  });
});
