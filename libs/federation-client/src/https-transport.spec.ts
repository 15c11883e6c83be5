// Follow-up to issue 11: the request's timeout bounds the whole request, connecting and the TLS handshake
// included; before, only the connect timeout (10 s by default) applied until the handshake was done.
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

/** A full collection, as a busy gateway has between two connections to a destination (`gc` exposed at run time). */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  // WeakRefs dereferenced in this job stay alive until it ends.
  await new Promise((resolve) => setImmediate(resolve));
}

/** An HTTPS server that answers 200 and records, per TLS connection, whether it resumed a session. */
async function handshakeCountingServer(names: string[]): Promise<{ server: ReturnType<typeof createHttpsServer>; port: number; handshakes: Array<'full' | 'resumed'>; ca: string }> {
  const ca = makeTestCa('transport session test CA');
  const pem = makeServerCertificate(ca, names);
  const handshakes: Array<'full' | 'resumed'> = [];
  const server = createHttpsServer({ cert: pem.certPem, key: pem.keyPem }, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  server.on('secureConnection', (socket: tls.TLSSocket) => handshakes.push(socket.isSessionReused() ? 'resumed' : 'full'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, handshakes, ca: ca.certPem };
}

describe('HttpsTransport TLS sessions and idle connections', () => {
  it('issue 19: a destination connected again resumes its TLS session (no full handshake), even after a garbage collection between the two connections', async () => {
    const remote = await handshakeCountingServer(['named.test', 'other.test']);
    const t = new HttpsTransport({ dns: { lookup: async () => [{ address: '127.0.0.1', family: 4 }] }, addressPolicy: { isAllowed: () => true } as never, ca: remote.ca, connectTimeoutMs: 5_000, connectionsPerAddress: 1, keepAliveTimeoutMs: 60_000, maxPools: 8 });
    const target = (name: string) => ({ connectHost: name, port: remote.port, hostHeader: name, tlsServerName: name });
    try {
      for (let i = 0; i < 3; i++) {
        expect((await t.send([target('named.test')], { ...request, timeoutMs: 5_000 })).status).toBe(200);
        remote.server.closeAllConnections(); // the peer (or our idle timeout) ended the connection
        await collectGarbage();
      }
      expect(remote.handshakes).toEqual(['full', 'resumed', 'resumed']);
      // Another name at the same address and port is not offered that session.
      expect((await t.send([target('other.test')], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      expect(remote.handshakes.at(-1)).toBe('full');
    } finally {
      await t.close();
      remote.server.closeAllConnections();
      remote.server.close();
    }
  });

  it('issue 19: an idle connection is closed after the configured idle timeout although the peer announces a longer keep-alive, its pool is let go, and the next request connects again (resumed)', async () => {
    const remote = await handshakeCountingServer(['named.test']);
    remote.server.keepAliveTimeout = 600_000; // announces Keep-Alive: timeout=600
    const closed: string[] = [];
    remote.server.on('connection', (socket: Socket) => socket.on('close', () => closed.push('closed')));
    const t = new HttpsTransport({ dns: { lookup: async () => [{ address: '127.0.0.1', family: 4 }] }, addressPolicy: { isAllowed: () => true } as never, ca: remote.ca, connectTimeoutMs: 5_000, connectionsPerAddress: 1, keepAliveTimeoutMs: 300, maxPools: 8 });
    const target = { connectHost: 'named.test', port: remote.port, hostHeader: 'named.test', tlsServerName: 'named.test' };
    try {
      expect((await t.send([target], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      expect((await t.send([target], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      expect(remote.handshakes).toEqual(['full']); // kept alive between two requests in a row
      for (let i = 0; i < 500 && closed.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(closed).toEqual(['closed']); // by us: the server would have kept it ten minutes
      for (let i = 0; i < 100 && t.poolCount > 0; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(t.poolCount).toBe(0); // nothing kept per destination once its connections are gone
      expect((await t.send([target], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      expect(remote.handshakes).toEqual(['full', 'resumed']);
      expect(t.poolCount).toBe(1);
    } finally {
      await t.close();
      remote.server.closeAllConnections();
      remote.server.close();
    }
  });
});

describe('HttpsTransport work per connection', () => {
  it('issue 19: a resumed connection builds no certificate objects and checks no server identity (a full handshake does both once); the session is offered only to the name it came from', async () => {
    const remote = await handshakeCountingServer(['named.test', 'other.test']);
    const peerCertificates = jest.spyOn(tls.TLSSocket.prototype, 'getPeerCertificate');
    const identityChecks = jest.spyOn(tls, 'checkServerIdentity');
    const t = new HttpsTransport({ dns: { lookup: async () => [{ address: '127.0.0.1', family: 4 }] }, addressPolicy: { isAllowed: () => true } as never, ca: remote.ca, connectTimeoutMs: 5_000, connectionsPerAddress: 1, keepAliveTimeoutMs: 60_000, maxPools: 8 });
    const target = (name: string) => ({ connectHost: name, port: remote.port, hostHeader: name, tlsServerName: name });
    const counts = () => ({ handshakes: [...remote.handshakes], peerCertificates: peerCertificates.mock.calls.length, identityChecks: identityChecks.mock.calls.length });
    try {
      expect((await t.send([target('named.test')], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      expect(counts()).toEqual({ handshakes: ['full'], peerCertificates: 1, identityChecks: 1 });
      for (let i = 0; i < 2; i++) {
        remote.server.closeAllConnections();
        expect((await t.send([target('named.test')], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      }
      expect(counts()).toEqual({ handshakes: ['full', 'resumed', 'resumed'], peerCertificates: 1, identityChecks: 1 });
      expect((await t.send([target('other.test')], { ...request, timeoutMs: 5_000 })).status).toBe(200);
      expect(counts()).toEqual({ handshakes: ['full', 'resumed', 'resumed', 'full'], peerCertificates: 2, identityChecks: 2 });
    } finally {
      peerCertificates.mockRestore();
      identityChecks.mockRestore();
      await t.close();
      remote.server.closeAllConnections();
      remote.server.close();
    }
  });
});
