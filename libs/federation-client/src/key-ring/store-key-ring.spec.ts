import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildServerKeyDocument, generateSigningKey, signJson, type SigningKey } from '@fedgate/protocol';
import { openSqliteStore, type Store } from '@fedgate/store';
import { createTestCa, issueServerCertificate, type TestCertificateAuthority } from '@fedgate/testing';
import { FederationHttpClient } from '../federation-http-client';
import { StoreKeyRing, type NotaryConfig } from './store-key-ring';

const DAY = 24 * 60 * 60 * 1000;

interface KeyServer {
  serverName: string;
  requests: string[];
  /** What GET /_matrix/key/v2/server answers (status and body); null: 500. */
  document: () => Record<string, unknown> | null;
  /** What POST /_matrix/key/v2/query answers. */
  query: (body: any) => Record<string, unknown>;
  close(): Promise<void>;
}

describe('StoreKeyRing against loopback HTTPS key servers', () => {
  let ca: TestCertificateAuthority;
  let cert: { certPem: string; keyPem: string };
  let dir: string;
  let store: Store;
  let client: FederationHttpClient;
  const servers: KeyServer[] = [];
  const own = generateSigningKey('own');

  beforeAll(() => {
    ca = createTestCa('key ring test CA');
    cert = issueServerCertificate(ca);
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-keyring-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    client = new FederationHttpClient({ ca: ca.certPem, addressPolicy: { allow: ['127.0.0.0/8'] } });
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await client.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function keyServer(): Promise<KeyServer> {
    const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem });
    const handle: KeyServer = {
      serverName: '',
      requests: [],
      document: () => null,
      query: () => ({ server_keys: [] }),
      close: () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        handle.requests.push(`${req.method} ${req.url}`);
        let body: Record<string, unknown> | null = null;
        if (req.method === 'GET' && req.url === '/_matrix/key/v2/server') body = handle.document();
        else if (req.method === 'POST' && req.url === '/_matrix/key/v2/query') body = handle.query(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(body ? 200 : 500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body ?? { errcode: 'M_UNKNOWN', error: 'down' }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    handle.serverName = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    servers.push(handle);
    return handle;
  }

  function ring(options: { notaries?: NotaryConfig[]; now?: () => number } = {}): StoreKeyRing {
    return new StoreKeyRing({ serverKeys: store.serverKeys, fetcher: client, ownServerName: 'own.test', ownKeys: () => [own], ...options });
  }

  function selfSigned(server: KeyServer, key: SigningKey, validUntilTs = Date.now() + DAY, oldKeys: { keyId: string; key: string; expiredTs: number }[] = []) {
    return buildServerKeyDocument({ serverName: server.serverName, keys: [key], validUntilTs, oldVerifyKeys: oldKeys });
  }

  it('fetches on a miss, caches in the store, and answers later lookups without a request', async () => {
    const remote = await keyServer();
    const key = generateSigningKey('k1');
    remote.document = () => selfSigned(remote, key);

    const lookup = await ring().prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]);
    expect(lookup(remote.serverName, key.keyId)?.publicKeyBase64).toBe(key.publicKeyBase64);
    expect(remote.requests).toEqual(['GET /_matrix/key/v2/server']);
    expect(await store.serverKeys.listRemote(remote.serverName)).toEqual([expect.objectContaining({ keyId: key.keyId, publicKey: key.publicKeyBase64, expiredTs: null })]);

    // A fresh key ring (another replica) finds it in the store.
    const again = await ring().prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]);
    expect(again(remote.serverName, key.keyId)).toBeDefined();
    expect(remote.requests).toHaveLength(1);
  });

  it('shares one fetch between concurrent lookups for a server', async () => {
    const remote = await keyServer();
    const key = generateSigningKey('k1');
    remote.document = () => selfSigned(remote, key);
    const keyRing = ring();
    const lookups = await Promise.all(Array.from({ length: 5 }, () => keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }])));
    for (const lookup of lookups) expect(lookup(remote.serverName, key.keyId)).toBeDefined();
    expect(remote.requests).toHaveLength(1);
  });

  it('refuses a document for another server name or with a bad self-signature', async () => {
    const remote = await keyServer();
    const key = generateSigningKey('k1');
    remote.document = () => buildServerKeyDocument({ serverName: 'someone-else.test', keys: [key], validUntilTs: Date.now() + DAY });
    const keyRing = ring();
    expect((await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]))(remote.serverName, key.keyId)).toBeUndefined();

    const remote2 = await keyServer();
    const forger = generateSigningKey('k1');
    remote2.document = () => {
      const doc = selfSigned(remote2, key);
      return { ...doc, signatures: selfSigned(remote2, forger).signatures };
    };
    expect((await keyRing.prepare([{ serverName: remote2.serverName, keyIds: [key.keyId] }]))(remote2.serverName, key.keyId)).toBeUndefined();
    expect(await store.serverKeys.listRemote(remote.serverName)).toEqual([]);
    expect(await store.serverKeys.listRemote(remote2.serverName)).toEqual([]);
  });

  it('caches a failure briefly: no second request within the window, a retry after it', async () => {
    const remote = await keyServer();
    const key = generateSigningKey('k1');
    let now = Date.now();
    const keyRing = ring({ now: () => now });
    await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]);
    await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]);
    expect(remote.requests).toHaveLength(1);

    remote.document = () => selfSigned(remote, key, now + DAY);
    now += 61_000;
    const lookup = await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]);
    expect(lookup(remote.serverName, key.keyId)).toBeDefined();
    expect(remote.requests).toHaveLength(2);
  });

  it('refetches when the cached keys expire before minimumValidUntilTs', async () => {
    const remote = await keyServer();
    const key = generateSigningKey('k1');
    const now = Date.now();
    remote.document = () => selfSigned(remote, key, now + 1000);
    const keyRing = ring({ now: () => now });
    await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]);
    remote.document = () => selfSigned(remote, key, now + DAY);
    const lookup = await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId], minimumValidUntilTs: now + 60_000 }]);
    expect(remote.requests).toHaveLength(2);
    expect(lookup(remote.serverName, key.keyId)?.validUntilTs).toBe(now + DAY);
  });

  it('issue 19 (keys decoded per /send): lookups between two loads of a server answer with the same decoded key (every prepare decoded every key again before); a reload decodes the new ones', async () => {
    const remote = await keyServer();
    const key = generateSigningKey('k1');
    const now = Date.now();
    remote.document = () => selfSigned(remote, key, now + 1000);
    const keyRing = ring({ now: () => now });
    const first = (await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]))(remote.serverName, key.keyId);
    const second = (await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId] }]))(remote.serverName, key.keyId);
    expect(first).toBeDefined();
    expect(second).toBe(first);
    const rotated = generateSigningKey('k2');
    remote.document = () => buildServerKeyDocument({ serverName: remote.serverName, keys: [key, rotated], validUntilTs: now + DAY });
    const reloaded = await keyRing.prepare([{ serverName: remote.serverName, keyIds: [key.keyId], minimumValidUntilTs: now + 60_000 }]);
    expect(remote.requests).toHaveLength(2);
    expect(reloaded(remote.serverName, key.keyId)).not.toBe(first);
    expect(reloaded(remote.serverName, key.keyId)?.validUntilTs).toBe(now + DAY);
    expect(reloaded(remote.serverName, rotated.keyId)?.publicKeyBase64).toBe(rotated.publicKeyBase64);
    // Another server's lookup never answers with this one's keys.
    expect(reloaded('other.test', key.keyId)).toBeUndefined();
  });

  it('honours old_verify_keys for what was signed before expired_ts', async () => {
    const remote = await keyServer();
    const current = generateSigningKey('new');
    const retired = generateSigningKey('old');
    const expiredTs = Date.now() - DAY;
    remote.document = () => selfSigned(remote, current, Date.now() + DAY, [{ keyId: retired.keyId, key: retired.publicKeyBase64, expiredTs }]);
    const lookup = await ring().prepare([{ serverName: remote.serverName, keyIds: [retired.keyId], minimumValidUntilTs: expiredTs - 5000 }]);
    const old = lookup(remote.serverName, retired.keyId);
    expect(old?.isValidAt(expiredTs - 5000)).toBe(true);
    expect(old?.isValidAt(expiredTs + 1)).toBe(false);
  });

  it('falls back to a notary, checking the notary signature as well as the origin self-signature', async () => {
    const origin = await keyServer(); // down: answers 500
    const notary = await keyServer();
    const originKey = generateSigningKey('o1');
    const notaryKey = generateSigningKey('n1');
    notary.document = () => selfSigned(notary, notaryKey);
    notary.query = (body) => {
      expect(Object.keys(body.server_keys)).toEqual([origin.serverName]);
      return { server_keys: [signJson(selfSigned(origin, originKey), notary.serverName, notaryKey)] };
    };
    const lookup = await ring({ notaries: [{ serverName: notary.serverName }] }).prepare([{ serverName: origin.serverName, keyIds: [originKey.keyId] }]);
    expect(lookup(origin.serverName, originKey.keyId)?.publicKeyBase64).toBe(originKey.publicKeyBase64);
    expect(origin.requests).toEqual(['GET /_matrix/key/v2/server']);
    expect(notary.requests).toEqual(['POST /_matrix/key/v2/query', 'GET /_matrix/key/v2/server']);
  });

  it('refuses a notary answer the notary did not sign (pinned notary key)', async () => {
    const origin = await keyServer();
    const notary = await keyServer();
    const originKey = generateSigningKey('o1');
    const pinned = generateSigningKey('n1');
    const impostor = generateSigningKey('n1');
    notary.query = () => ({ server_keys: [signJson(selfSigned(origin, originKey), notary.serverName, impostor)] });
    const keyRing = ring({ notaries: [{ serverName: notary.serverName, verifyKeys: { [pinned.keyId]: pinned.publicKeyBase64 } }] });
    const lookup = await keyRing.prepare([{ serverName: origin.serverName, keyIds: [originKey.keyId] }]);
    expect(lookup(origin.serverName, originKey.keyId)).toBeUndefined();
    expect(await store.serverKeys.listRemote(origin.serverName)).toEqual([]);
  });

  it('answers its own keys without a request', async () => {
    const lookup = await ring().prepare([{ serverName: 'own.test', keyIds: [own.keyId] }]);
    expect(lookup('own.test', own.keyId)?.publicKeyBase64).toBe(own.publicKeyBase64);
  });

  it('keeps the verified document with the origin signature for notary answers', async () => {
    const remote = await keyServer();
    const key = generateSigningKey('k1');
    remote.document = () => selfSigned(remote, key);
    const docs = await ring().serverKeyDocuments(remote.serverName);
    expect(docs).toEqual([expect.objectContaining({ server_name: remote.serverName, signatures: { [remote.serverName]: expect.any(Object) } })]);
  });
});
