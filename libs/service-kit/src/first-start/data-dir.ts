import { mkdir } from 'node:fs/promises';

/** Creates the data dir (owner-only: it holds private keys) if it is not there. */
export async function ensureDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
}
