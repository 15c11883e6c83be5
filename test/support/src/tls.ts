// The test certificate authority every e2e test shares: fedgate instances and Synapse get server
// certificates from one CA, and each trusts only that CA, so TLS is verified end to end as in
// production. Keys come from node:crypto (native, about 0.1 s for RSA 2048); forge only builds
// and signs the X.509 structures.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import forge from 'node-forge';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export type TestCertificateAuthority = PemPair;
export type ServerCertificate = PemPair;

export interface PemFiles {
  certPath: string;
  keyPath: string;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// Always in a server certificate, so every loopback spelling of a test server verifies.
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

function generateRsaKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // PKCS#1: the form forge parses and every TLS stack (OpenSSL, Twisted, Node) loads.
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), keyPem };
}

function positiveSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // DER integers are signed; keep the serial positive
  return bytes.toString('hex');
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, validForMs: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = positiveSerialNumber();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - HOUR_MS); // tolerate small clock differences
  cert.validity.notAfter = new Date(now + validForMs);
  return cert;
}

export function createTestCa(commonName = 'fedgate test CA'): TestCertificateAuthority {
  const keys = generateRsaKeyPair();
  const cert = newCertificate(keys.publicKey, 3650 * DAY_MS);
  const subject = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'fedgate tests' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

function subjectAltName(name: string): { type: number; value?: string; ip?: string } {
  return isIP(name) ? { type: 7, ip: name } : { type: 2, value: name };
}

/** A server certificate for localhost, 127.0.0.1, ::1 and `names` (DNS names or IP addresses). */
export function issueServerCertificate(ca: TestCertificateAuthority, names: readonly string[] = []): ServerCertificate {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = generateRsaKeyPair();
  const cert = newCertificate(keys.publicKey, 365 * DAY_MS);
  const allNames = [...new Set([...LOOPBACK_NAMES, ...names])];
  cert.setSubject([{ name: 'commonName', value: allNames.find((name) => !isIP(name)) ?? allNames[0]! }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: allNames.map(subjectAltName) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

async function writePemPair(pair: PemPair, directory: string, baseName: string): Promise<PemFiles> {
  await mkdir(directory, { recursive: true });
  const certPath = path.join(directory, `${baseName}.crt`);
  const keyPath = path.join(directory, `${baseName}.key`);
  await writeFile(certPath, pair.certPem);
  await writeFile(keyPath, pair.keyPem, { mode: 0o600 });
  return { certPath, keyPath };
}

/** Writes `ca.crt` and `ca.key` into `directory`. */
export function writeTestCa(ca: TestCertificateAuthority, directory: string): Promise<PemFiles> {
  return writePemPair(ca, directory, 'ca');
}

/** Writes `<baseName>.crt` and `<baseName>.key` into `directory`. */
export function writeServerCertificate(certificate: ServerCertificate, directory: string, baseName = 'server'): Promise<PemFiles> {
  return writePemPair(certificate, directory, baseName);
}

let sharedCa: TestCertificateAuthority | undefined;

/** One CA per test process (each jest test file runs in one), for tests that do not pass their own. */
export function sharedTestCa(): TestCertificateAuthority {
  sharedCa ??= createTestCa();
  return sharedCa;
}
