// Local TLS fixture for this library's specs: a throwaway CA and server certificates.
// (The shared test CA in test/support cannot be imported from an adapter library's specs.)
import { constants, generateKeyPairSync, privateEncrypt, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface TestPem {
  readonly certPem: string;
  readonly keyPem: string;
}

const SHA256_DIGEST_INFO_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * forge builds the certificate; node:crypto does the RSA work, because forge's pure-JS RSA is
 * very slow under jest on a loaded machine. forge calls `sign(md)` with the TBS digest ready.
 */
function nodeRsaSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  const sign = (md: forge.md.MessageDigest) => {
    const digest = Buffer.from(md.digest().getBytes(), 'binary');
    const digestInfo = Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]);
    return privateEncrypt({ key: keyPem, padding: constants.RSA_PKCS1_PADDING }, digestInfo).toString('binary');
  };
  return { sign } as unknown as forge.pki.rsa.PrivateKey;
}

function rsaKeys(): { signer: forge.pki.rsa.PrivateKey; publicKey: forge.pki.PublicKey; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { signer: nodeRsaSigner(keyPem), publicKey: forge.pki.publicKeyFromPem(publicPem), keyPem };
}

function baseCertificate(publicKey: forge.pki.PublicKey): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  const serial = randomBytes(12);
  serial[0] = serial[0]! & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  return cert;
}

export function makeTestCa(commonName: string): TestPem {
  const keys = rsaKeys();
  const cert = baseCertificate(keys.publicKey);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  cert.sign(keys.signer, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

/** A server certificate signed by `ca` for exactly `names` (DNS names and IP addresses). */
export function makeServerCertificate(ca: TestPem, names: readonly string[]): TestPem {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caSigner = nodeRsaSigner(ca.keyPem);
  const keys = rsaKeys();
  const cert = baseCertificate(keys.publicKey);
  cert.setSubject([{ name: 'commonName', value: names[0] ?? 'server' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((name) => (isIP(name) ? { type: 7, ip: name } : { type: 2, value: name })) },
  ]);
  cert.sign(caSigner, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}
