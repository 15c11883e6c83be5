// Issue 18 defect 11: thumbnails of non-standard sizes were decoded again on every request, up to
// 10000×10000, with no bound on how many at once (federation peers included).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { openSqliteStore, type Store } from '@fedgate/store';
import { MemoryBlobStore } from './blob-store';
import { ContentRepository } from './content-repository';
import { MAX_THUMBNAIL_EDGE, servedThumbnailRequest, ThumbnailGate } from './thumbnail-limits';

/** Counts the thumbnails the repository had to make (a cache hit never reaches the gate). */
class CountingGate extends ThumbnailGate {
  made = 0;
  override run<T>(key: string, work: () => Promise<T>): Promise<T> {
    return super.run(key, () => (this.made++, work()));
  }
}

describe('thumbnail bounds', () => {
  let dir: string;
  let store: Store;
  let blobs: MemoryBlobStore;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-thumb-limits-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    blobs = new MemoryBlobStore();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const image = () => sharp({ create: { width: 2000, height: 1500, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();

  it('rounds requested sizes up to a bounded set of edges, capped', () => {
    expect(servedThumbnailRequest({ width: 32, height: 32, method: 'crop', animated: false })).toMatchObject({ width: 32, height: 32 });
    expect(servedThumbnailRequest({ width: 33, height: 101, method: 'scale', animated: false })).toMatchObject({ width: 48, height: 128 });
    expect(servedThumbnailRequest({ width: 10_000, height: 9_999, method: 'scale', animated: false })).toMatchObject({ width: MAX_THUMBNAIL_EDGE, height: MAX_THUMBNAIL_EDGE });
  });

  it('decodes a non-standard size once: later requests of that size (and of sizes rounding to it) come from the cache', async () => {
    const gate = new CountingGate();
    const repository = new ContentRepository(store.media, blobs, undefined, { serverName: 'here.test', maxUploadBytes: 50_000_000, thumbnailGate: gate });
    const { record } = await repository.upload({ bytes: await image(), contentType: 'image/png', uploadName: 'big.png', uploader: '@u:here.test' });
    const first = await repository.thumbnail('here.test', record.mediaId, { width: 100, height: 77, method: 'scale', animated: false }, { allowRemote: false });
    const again = await repository.thumbnail('here.test', record.mediaId, { width: 100, height: 77, method: 'scale', animated: false }, { allowRemote: false });
    const near = await repository.thumbnail('here.test', record.mediaId, { width: 120, height: 90, method: 'scale', animated: false }, { allowRemote: false });
    expect(gate.made).toBe(1);
    expect(again.bytes.equals(first.bytes)).toBe(true);
    expect(near.bytes.equals(first.bytes)).toBe(true);
    expect(await store.media.getThumbnail('here.test', record.mediaId, '128x96-scale')).toMatchObject({ width: 128, height: 96 });
  });

  it('never decodes to more than the largest served edge, whatever is asked', async () => {
    const repository = new ContentRepository(store.media, blobs, undefined, { serverName: 'here.test', maxUploadBytes: 50_000_000 });
    const { record } = await repository.upload({ bytes: await image(), contentType: 'image/png', uploadName: 'big.png', uploader: '@u:here.test' });
    const huge = await repository.thumbnail('here.test', record.mediaId, { width: 10_000, height: 10_000, method: 'crop', animated: false }, { allowRemote: false });
    const meta = await sharp(huge.bytes).metadata();
    expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(MAX_THUMBNAIL_EDGE);
  });

  it('runs at most `concurrency` at once, shares one run per thumbnail, and refuses beyond the queue with 429', async () => {
    const gate = new ThumbnailGate({ concurrency: 1, maxQueued: 1 });
    const releases: Array<() => void> = [];
    let running = 0;
    let most = 0;
    const work = () =>
      new Promise<string>((resolve) => {
        running++;
        most = Math.max(most, running);
        releases.push(() => (running--, resolve('done')));
      });
    const a = gate.run('a', work);
    const aAgain = gate.run('a', work);
    const b = gate.run('b', work);
    await expect(gate.run('c', work)).rejects.toMatchObject({ status: 429, errcode: 'M_LIMIT_EXCEEDED' });
    await new Promise((r) => setImmediate(r));
    releases.shift()!();
    await expect(a).resolves.toBe('done');
    await expect(aAgain).resolves.toBe('done');
    await new Promise((r) => setImmediate(r));
    releases.shift()!();
    await expect(b).resolves.toBe('done');
    expect(most).toBe(1);
  });
});
