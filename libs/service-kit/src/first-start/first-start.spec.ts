import { X509Certificate, createPrivateKey } from 'node:crypto';
import { promises as fsPromises } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureSigningKey } from './signing-key';
import { certificateNames, ensureSelfSignedCertificate } from './tls-certificate';

describe('first-start material', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fedgate-first-start-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('creates a Synapse-format signing key with mode 0600 once, then reuses it', async () => {
    const file = path.join(dir, 'data', 'signing.key');
    const first = await ensureSigningKey(file);
    expect(first.created).toBe(true);
    expect(first.current.keyId).toMatch(/^ed25519:a_[A-Za-z]{4}$/);
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/^ed25519 a_[A-Za-z]{4} [A-Za-z0-9+/]{43}\n$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await ensureSigningKey(file);
    expect(again.created).toBe(false);
    expect(again.current.keyId).toBe(first.current.keyId);
    expect(again.current.publicKeyBase64).toBe(first.current.publicKeyBase64);
  });

  it('agrees on one key when two starts race', async () => {
    const file = path.join(dir, 'signing.key');
    const [a, b] = await Promise.all([ensureSigningKey(file), ensureSigningKey(file)]);
    expect(a.current.keyId).toBe(b.current.keyId);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
  });

  it('reads an existing Synapse key file as is', async () => {
    const file = path.join(dir, 'signing.key');
    await writeFile(file, 'ed25519 a_legacy ' + Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '') + '\n', { mode: 0o600 });
    expect((await ensureSigningKey(file)).current.keyId).toBe('ed25519:a_legacy');
  });

  it('reads an existing key from a read-only mount (a Kubernetes Secret), writing nothing beside it', async () => {
    const file = path.join(dir, 'signing.key');
    await writeFile(file, 'ed25519 a_mounted ' + Buffer.alloc(32, 9).toString('base64').replace(/=+$/, '') + '\n', { mode: 0o400 });
    // Root ignores directory modes, so the read-only file system is the write failing as it does there.
    const readOnly = jest.spyOn(fsPromises, 'writeFile').mockRejectedValue(Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' }));
    try {
      expect((await ensureSigningKey(file)).current.keyId).toBe('ed25519:a_mounted');
      expect(readOnly).not.toHaveBeenCalled();
    } finally {
      readOnly.mockRestore();
    }
  });

  it('creates a self-signed certificate for the server name, reuses it, and replaces it when the name changes', async () => {
    const certFile = path.join(dir, 'tls', 'server.crt');
    const keyFile = path.join(dir, 'tls', 'server.key');
    const first = await ensureSelfSignedCertificate(certFile, keyFile, 'gw.example.org');
    expect(first.created).toBe(true);
    const cert = new X509Certificate(first.cert);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkHost('gw.example.org')).toBe('gw.example.org');
    expect(cert.checkPrivateKey(createPrivateKey(first.key))).toBe(true);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);

    const again = await ensureSelfSignedCertificate(certFile, keyFile, 'gw.example.org');
    expect(again.created).toBe(false);
    expect(again.cert).toBe(first.cert);

    const renamed = await ensureSelfSignedCertificate(certFile, keyFile, 'other.example.org');
    expect(renamed.created).toBe(true);
    expect(new X509Certificate(renamed.cert).checkHost('other.example.org')).toBe('other.example.org');
  }, 30_000);

  it('names every loopback spelling for a loopback server name', () => {
    expect(certificateNames('localhost')).toEqual(['localhost', '127.0.0.1', '::1']);
    expect(certificateNames('127.0.0.1')).toEqual(['127.0.0.1', 'localhost', '::1']);
    expect(certificateNames('example.org')).toEqual(['example.org']);
  });
});
