import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { blobKey, BlobTooLargeError, FileBlobStore } from './blob-store';

const filesUnder = (dir: string) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);

describe('file blob store', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'fedgate-blobs-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes, reads and deletes blobs under fixed-shape keys only, leaving no temporary files', async () => {
    const blobs = new FileBlobStore(dir);
    const key = blobKey('local', 'here.test', 'abc');
    expect(key).toMatch(/^local\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{60}$/);
    expect(blobKey('local', 'here.test', 'abc')).toBe(key);
    expect(blobKey('remote', 'here.test', 'abc')).not.toBe(key);
    await blobs.put(key, Buffer.from('bytes'));
    expect(await blobs.get(key)).toEqual(Buffer.from('bytes'));
    expect(readdirSync(dir, { recursive: true }).filter((name) => String(name).endsWith('.tmp'))).toEqual([]);
    await blobs.delete(key);
    expect(await blobs.get(key)).toBeUndefined();
    await expect(blobs.put('../../etc/passwd', Buffer.from('x'))).rejects.toThrow('not a blob key');
  });

  describe('streamed writes (issue 14: uploads streamed to disk)', () => {
    it('writes a stream chunk by chunk with its size and SHA-256', async () => {
      const blobs = new FileBlobStore(dir);
      const key = blobKey('local', 'here.test', 'streamed');
      const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(16 * 1024, i));
      const written = await blobs.putStream(key, Readable.from(chunks), 1024 * 1024);
      const whole = Buffer.concat(chunks);
      expect(written).toEqual({ size: whole.length, sha256: createHash('sha256').update(whole).digest('base64url') });
      expect(await blobs.get(key)).toEqual(whole);
      expect(filesUnder(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    });

    it('stops past the bound (BlobTooLargeError), leaves nothing, and does not destroy the source', async () => {
      const blobs = new FileBlobStore(dir);
      const source = Readable.from(Array.from({ length: 10 }, () => Buffer.alloc(1024)));
      await expect(blobs.putStream(blobKey('local', 'here.test', 'big'), source, 4096)).rejects.toBeInstanceOf(BlobTooLargeError);
      expect(filesUnder(dir)).toEqual([]);
      // The rest of the source is read and discarded (an HTTP request can still be answered), not destroyed with an error.
      await finished(source);
      expect(source.errored).toBeNull();
    });

    it('an upload cut off before its end leaves nothing', async () => {
      const blobs = new FileBlobStore(dir);
      const source = new PassThrough();
      const writing = blobs.putStream(blobKey('local', 'here.test', 'cut'), source, 1024 * 1024);
      source.write(Buffer.alloc(64 * 1024));
      await new Promise((resolve) => setImmediate(resolve));
      source.destroy();
      await expect(writing).rejects.toThrow('cut off');
      expect(filesUnder(dir)).toEqual([]);
    });
  });
});
