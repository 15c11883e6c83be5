// The server's Ed25519 signing key file (Synapse format, `ed25519 <version> <unpadded base64 seed>`):
// created on first start, read on every later one.
import { readFile, stat } from 'node:fs/promises';
import { generateSigningKey, parseSigningKeyFile, serializeSigningKeyFile, type SigningKey } from '@fedgate/protocol';
import type { Logger } from 'pino';
import { writeFileOnce } from './write-once';

export interface SigningKeyFile {
  /** The key this server signs with: the first one in the file. */
  current: SigningKey;
  all: SigningKey[];
  created: boolean;
}

export async function ensureSigningKey(file: string, logger?: Logger): Promise<SigningKeyFile> {
  const created = await writeFileOnce(file, serializeSigningKeyFile([generateSigningKey()]), 0o600);
  const all = parseSigningKeyFile(await readFile(file, 'utf8'));
  if (all.length === 0) throw new Error(`signing key file ${file} holds no key`);
  const current = all[0]!;
  if (created) logger?.info({ file, keyId: current.keyId }, 'generated the server signing key');
  else await warnIfReadableByOthers(file, logger);
  return { current, all, created };
}

export async function warnIfReadableByOthers(file: string, logger?: Logger): Promise<void> {
  const { mode } = await stat(file);
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    logger?.warn({ file, mode: (mode & 0o777).toString(8) }, 'private key file is readable by other users; chmod 600 it');
  }
}
