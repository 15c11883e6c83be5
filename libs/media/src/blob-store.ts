// Where media bytes live. Keys are chosen by the content repository (hex, fixed shape), never taken
// from a request, so no key can leave the media directory.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface BlobStore {
  put(key: string, bytes: Buffer): Promise<void>;
  /** Undefined when there is no blob under `key`. */
  get(key: string): Promise<Buffer | undefined>;
  delete(key: string): Promise<void>;
}

const KEY = /^[a-z]+\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{60}$/;

/** `<kind>/ab/cd/<rest of sha256>` of the parts: spreads files over directories, fixed characters. */
export function blobKey(kind: 'local' | 'remote' | 'thumbnail', ...parts: string[]): string {
  const hash = createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  return `${kind}/${hash.slice(0, 2)}/${hash.slice(2, 4)}/${hash.slice(4)}`;
}

/**
 * Files under one directory (`<dataDir>/media`). A blob is written to a temporary name and renamed,
 * so readers never see half a file and a crash leaves at most a stray temporary file.
 */
export class FileBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  async put(key: string, bytes: Buffer): Promise<void> {
    const file = this.pathOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temporary, bytes);
    await rename(temporary, file);
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  private pathOf(key: string): string {
    if (!KEY.test(key)) throw new Error(`not a blob key: ${JSON.stringify(key)}`);
    return path.join(this.root, ...key.split('/'));
  }
}

/** For tests. */
export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, Buffer>();

  async put(key: string, bytes: Buffer): Promise<void> {
    this.blobs.set(key, Buffer.from(bytes));
  }

  async get(key: string): Promise<Buffer | undefined> {
    return this.blobs.get(key);
  }

  async delete(key: string): Promise<void> {
    this.blobs.delete(key);
  }
}
