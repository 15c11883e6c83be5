// Where media bytes live. Keys are chosen by the content repository (hex, fixed shape), never taken
// from a request, so no key can leave the media directory.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** What a streamed blob turned out to be. */
export interface StreamedBlob {
  size: number;
  /** SHA-256 of the bytes, base64url. */
  sha256: string;
}

/** A streamed blob went over its size bound; nothing was kept. */
export class BlobTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`more than ${maxBytes} bytes`);
  }
}

export interface BlobStore {
  put(key: string, bytes: Buffer): Promise<void>;
  /**
   * Writes the stream's bytes under `key` as they arrive, hashing them, and never more than `maxBytes`
   * (BlobTooLargeError). On any failure — too large, the source aborted — nothing is left under `key` or beside it.
   * The source itself is not destroyed: what it still holds is read and discarded, so an HTTP answer can follow.
   */
  putStream(key: string, source: Readable, maxBytes: number): Promise<StreamedBlob>;
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

  async putStream(key: string, source: Readable, maxBytes: number): Promise<StreamedBlob> {
    const file = this.pathOf(key);
    const copy = detached(source);
    const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    const meter = new ByteMeter(maxBytes);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await pipeline(copy, meter, createWriteStream(temporary, { flags: 'wx' }));
      await rename(temporary, file);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
    return meter.result();
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

  async putStream(key: string, source: Readable, maxBytes: number): Promise<StreamedBlob> {
    const chunks: Buffer[] = [];
    const meter = new ByteMeter(maxBytes);
    await pipeline(detached(source), meter, async (meterd: AsyncIterable<Buffer>) => {
      for await (const chunk of meterd) chunks.push(chunk);
    });
    this.blobs.set(key, Buffer.concat(chunks));
    return meter.result();
  }

  async get(key: string): Promise<Buffer | undefined> {
    return this.blobs.get(key);
  }

  async delete(key: string): Promise<void> {
    this.blobs.delete(key);
  }
}

/** Counts and hashes what passes, failing past `maxBytes`. */
class ByteMeter extends Transform {
  private size = 0;
  private readonly hash: Hash = createHash('sha256');

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      callback(new BlobTooLargeError(this.maxBytes));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  result(): StreamedBlob {
    return { size: this.size, sha256: this.hash.digest('base64url') };
  }
}

/**
 * The source's bytes through a stream of our own, so a failed write does not destroy the source (an HTTP request
 * whose connection must stay to carry the answer): on failure the source is unhooked and the rest of it discarded.
 * A source that errors or closes before its end fails the copy.
 */
function detached(source: Readable): Readable {
  const copy = new PassThrough();
  // The copy may fail before the pipeline reading it is set up; the pipeline still reports that error.
  copy.on('error', () => undefined);
  const abort = () => {
    if (!source.readableEnded) copy.destroy(new Error('the upload was cut off before its end'));
  };
  const fail = (err: Error) => copy.destroy(err);
  if (source.destroyed) {
    abort();
    return copy;
  }
  source.once('error', fail);
  source.once('close', abort);
  copy.once('close', () => {
    source.off('error', fail);
    source.off('close', abort);
    if (!source.readableEnded) {
      source.unpipe(copy);
      source.resume();
    }
  });
  source.pipe(copy);
  return copy;
}
