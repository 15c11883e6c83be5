import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { blobKey, FileBlobStore } from './blob-store';

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
});
