// The policy server's own signing key (`ed25519:policy_server`), kept in its own file: the spec warns it must
// not be the federation signing key, so "may send federation traffic" and "recommends events" stay apart and a
// room can revoke it without us.
import { readFile } from 'node:fs/promises';
import { generateSigningKey, parseSigningKeyFile, serializeSigningKeyFile, type SigningKey } from '@fedgate/protocol';
import { writeFileOnce } from '@fedgate/service-kit';
import type { Logger } from 'pino';

export const POLICY_KEY_VERSION = 'policy_server';

export async function ensurePolicyKey(file: string, federationKeys: readonly SigningKey[], logger?: Logger): Promise<SigningKey> {
  const created = await writeFileOnce(file, serializeSigningKeyFile([generateSigningKey(POLICY_KEY_VERSION)]), 0o600);
  const [key] = parseSigningKeyFile(await readFile(file, 'utf8'));
  if (!key) throw new Error(`policy key file ${file} holds no key`);
  if (key.version !== POLICY_KEY_VERSION) throw new Error(`policy key file ${file} holds key ${key.keyId}; the policy server key must be ed25519:${POLICY_KEY_VERSION}`);
  if (federationKeys.some((k) => k.publicKey.equals(key.publicKey))) {
    throw new Error(`policy key file ${file} holds the federation signing key; the policy server needs a key of its own`);
  }
  if (created) logger?.info({ file, publicKey: key.publicKeyBase64 }, 'generated the policy server key');
  return key;
}
