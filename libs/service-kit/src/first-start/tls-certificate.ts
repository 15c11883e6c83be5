// A self-signed certificate for the server name when no certificate is configured, so a fresh
// `npm start` serves HTTPS at once. Peers will not trust it unless told to: production deployments
// configure tls.cert / tls.key (or put a proxy with a real certificate in front).
import { X509Certificate, constants, generateKeyPairSync, privateEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import forge from 'node-forge';
import type { Logger } from 'pino';
import { warnIfReadableByOthers } from './signing-key';
import { writeFileOnce } from './write-once';

export interface TlsMaterial {
  cert: string;
  key: string;
  created: boolean;
}

const DAY_MS = 86_400_000;
const VALIDITY_DAYS = 825;
const RENEW_BEFORE_MS = 7 * DAY_MS;
const LOOPBACK = ['localhost', '127.0.0.1', '::1'];

/** The names a self-signed certificate for `host` covers: the host, plus every loopback spelling for loopback hosts. */
export function certificateNames(host: string): string[] {
  return LOOPBACK.includes(host) ? [host, ...LOOPBACK.filter((name) => name !== host)] : [host];
}

// DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256.
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** A forge-compatible signer doing the RSA operation natively (forge's pure-JS one takes ~0.2 s). */
function nativeRsaSigner(privateKey: KeyObject): forge.pki.rsa.PrivateKey {
  return {
    sign(md: forge.md.MessageDigest) {
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      const signature = privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, digest]));
      return signature.toString('binary');
    },
  } as unknown as forge.pki.rsa.PrivateKey;
}

export function createSelfSignedCertificate(host: string, now = Date.now()): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f; // DER integers are signed; keep it positive
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(now - DAY_MS);
  cert.validity.notAfter = new Date(now + VALIDITY_DAYS * DAY_MS);
  const names = certificateNames(host);
  const subject = [{ name: 'commonName', value: names.find((name) => !isIP(name)) ?? host }, { name: 'organizationName', value: 'fedgate (self-signed)' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((name) => (isIP(name) ? { type: 7, ip: name } : { type: 2, value: name })) },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(nativeRsaSigner(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

function stillGood(certPem: string, host: string): boolean {
  const cert = new X509Certificate(certPem);
  if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS) return false;
  return isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The self-signed pair at certFile/keyFile: reused while it is valid for `host`, otherwise (first start,
 * expiring, server name changed) generated anew. The key is written first and the certificate last, so
 * a present certificate means a complete pair.
 */
export async function ensureSelfSignedCertificate(certFile: string, keyFile: string, host: string, logger?: Logger): Promise<TlsMaterial> {
  const existing = await readIfPresent(certFile);
  if (existing !== undefined) {
    if (stillGood(existing, host)) {
      await warnIfReadableByOthers(keyFile, logger);
      return { cert: existing, key: await readFile(keyFile, 'utf8'), created: false };
    }
    logger?.info({ certFile, host }, 'self-signed certificate is expiring or does not name the server; replacing it');
    await rm(certFile, { force: true });
    await rm(keyFile, { force: true });
  }
  const generated = createSelfSignedCertificate(host);
  const keyWritten = await writeFileOnce(keyFile, generated.key, 0o600);
  if (!keyWritten) return waitForPair(certFile, keyFile);
  await writeFileOnce(certFile, generated.cert, 0o644);
  logger?.info({ certFile, names: certificateNames(host) }, 'generated a self-signed TLS certificate');
  return { ...generated, created: true };
}

/** Another process is writing the pair: wait for its certificate. */
async function waitForPair(certFile: string, keyFile: string): Promise<TlsMaterial> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const cert = await readIfPresent(certFile);
    if (cert !== undefined) return { cert, key: await readFile(keyFile, 'utf8'), created: false };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${keyFile} exists but ${certFile} never appeared; remove the key file to regenerate`);
}

/** The configured certificate and key, or the self-signed pair when none is configured. */
export async function loadTlsMaterial(
  tls: { cert: string; key: string; selfSigned: boolean },
  host: string,
  logger?: Logger,
): Promise<TlsMaterial> {
  if (tls.selfSigned) return ensureSelfSignedCertificate(tls.cert, tls.key, host, logger);
  const [cert, key] = await Promise.all([
    readFile(tls.cert, 'utf8').catch((err: Error) => Promise.reject(new Error(`cannot read tls.cert ${tls.cert}: ${err.message}`))),
    readFile(tls.key, 'utf8').catch((err: Error) => Promise.reject(new Error(`cannot read tls.key ${tls.key}: ${err.message}`))),
  ]);
  return { cert, key, created: false };
}
