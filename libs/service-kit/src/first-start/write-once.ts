import { randomBytes } from 'node:crypto';
import { access, link, mkdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `content` to `file` only if no file is there, atomically: written beside it, then hard-linked
 * into place, so two processes starting on one data dir never see a half-written file and never both win.
 * Resolves true when this call created the file.
 */
export async function writeFileOnce(file: string, content: string, mode: number): Promise<boolean> {
  // A file already there is left alone without writing beside it: it may sit on a read-only mount (a Kubernetes Secret).
  if (await exists(file)) return false;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, content, { mode, flag: 'wx' });
  try {
    await link(temporary, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
