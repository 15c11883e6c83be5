import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createTestCa, issueServerCertificate, writeServerCertificate, writeTestCa } from '@fedgate/testing';

describe('test certificate authority', () => {
  const ca = createTestCa();
  const issued = issueServerCertificate(ca, ['fedgate-a.test', '10.9.8.7']);
  const caCert = new X509Certificate(ca.certPem);
  const serverCert = new X509Certificate(issued.certPem);

  it('issues a certificate that the CA signed', () => {
    expect(caCert.ca).toBe(true);
    expect(serverCert.ca).toBe(false);
    expect(serverCert.checkIssued(caCert)).toBe(true);
    expect(serverCert.verify(caCert.publicKey)).toBe(true);
    expect(serverCert.verify(createPublicKey(issueServerCertificate(createTestCa()).certPem))).toBe(false);
  });

  it('names loopback and the requested hosts', () => {
    const sans = serverCert.subjectAltName?.split(', ') ?? [];
    expect(sans).toEqual(
      expect.arrayContaining(['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1', 'DNS:fedgate-a.test', 'IP Address:10.9.8.7']),
    );
    expect(serverCert.checkHost('localhost')).toBe('localhost');
    expect(serverCert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(serverCert.checkIP('::1')).toBe('::1');
  });

  it('is valid now', () => {
    const now = Date.now();
    expect(Date.parse(serverCert.validFrom)).toBeLessThanOrEqual(now);
    expect(Date.parse(serverCert.validTo)).toBeGreaterThan(now);
  });

  it('pairs each certificate with its private key', () => {
    expect(serverCert.checkPrivateKey(createPrivateKey(issued.keyPem))).toBe(true);
    expect(caCert.checkPrivateKey(createPrivateKey(ca.keyPem))).toBe(true);
  });

  it('passes a real TLS handshake that trusts only the CA', async () => {
    const server = createServer({ cert: issued.certPem, key: issued.keyPem }, (socket) => socket.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.certPem });
      await once(socket, 'secureConnect');
      expect(socket.authorized).toBe(true);
      socket.destroy();
    } finally {
      server.close();
    }
  });

  it('writes PEM files', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'fedgate-ca-'));
    try {
      const caFiles = await writeTestCa(ca, directory);
      const serverFiles = await writeServerCertificate(issued, directory, 'fedgate-a');
      expect(await readFile(caFiles.certPath, 'utf8')).toBe(ca.certPem);
      expect(await readFile(serverFiles.keyPath, 'utf8')).toBe(issued.keyPem);
      expect(path.basename(serverFiles.certPath)).toBe('fedgate-a.crt');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
