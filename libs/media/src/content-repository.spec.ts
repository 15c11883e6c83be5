import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore, type Store } from '@fedgate/store';
import { MemoryBlobStore } from './blob-store';
import { ContentRepository } from './content-repository';
import type { FetchedMedia, RemoteMediaSource } from './remote-media';

describe('content repository', () => {
  let dir: string;
  let store: Store;
  let blobs: MemoryBlobStore;
  let fetches: string[];
  let remoteAnswer: () => Promise<FetchedMedia>;
  let repository: ContentRepository;
  let now: number;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-media-unit-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    blobs = new MemoryBlobStore();
    fetches = [];
    remoteAnswer = async () => ({ contentType: 'text/plain', uploadName: 'r.txt', bytes: Buffer.from('remote') });
    const remote: RemoteMediaSource = {
      download: async (serverName, mediaId) => {
        fetches.push(`${serverName}/${mediaId}`);
        return remoteAnswer();
      },
    };
    now = 1_000;
    repository = new ContentRepository(store.media, blobs, remote, { serverName: 'here.test', maxUploadBytes: 10, pendingUploadMs: 100, now: () => now });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores an upload and serves it back; refuses oversize before storing anything', async () => {
    const { contentUri, record } = await repository.upload({ bytes: Buffer.from('hello'), contentType: 'text/plain', uploadName: 'h.txt', uploader: '@u:here.test' });
    expect(contentUri).toBe(`mxc://here.test/${record.mediaId}`);
    expect(await repository.download('here.test', record.mediaId, { allowRemote: true })).toEqual({ contentType: 'text/plain', uploadName: 'h.txt', bytes: Buffer.from('hello') });
    await expect(repository.upload({ bytes: Buffer.alloc(11), contentType: 'text/plain', uploadName: null, uploader: '@u:here.test' })).rejects.toMatchObject({ status: 413, errcode: 'M_TOO_LARGE' });
    expect(blobs.blobs.size).toBe(1);
  });

  it('rejects media IDs that could escape and server names that are not server names', async () => {
    await expect(repository.download('here.test', '../etc', { allowRemote: true })).rejects.toMatchObject({ status: 404 });
    await expect(repository.download('bad/name', 'abc', { allowRemote: true })).rejects.toMatchObject({ status: 400, errcode: 'M_INVALID_PARAM' });
  });

  it('fetches remote media once for concurrent requests, then serves the cache', async () => {
    const [first, second] = await Promise.all([
      repository.download('there.test', 'abc', { allowRemote: true }),
      repository.download('there.test', 'abc', { allowRemote: true }),
    ]);
    expect(first).toEqual({ contentType: 'text/plain', uploadName: 'r.txt', bytes: Buffer.from('remote') });
    expect(second).toEqual(first);
    expect(await repository.download('there.test', 'abc', { allowRemote: false })).toEqual(first);
    expect(fetches).toEqual(['there.test/abc']);
    await expect(repository.downloadLocal('abc')).rejects.toMatchObject({ status: 404 });
  });

  it('does not fetch when remote is not allowed, and does not cache a failed or oversized fetch', async () => {
    await expect(repository.download('there.test', 'nope', { allowRemote: false })).rejects.toMatchObject({ status: 404 });
    remoteAnswer = async () => ({ contentType: 'text/plain', uploadName: null, bytes: Buffer.alloc(11) });
    await expect(repository.download('there.test', 'big', { allowRemote: true })).rejects.toMatchObject({ status: 502, errcode: 'M_TOO_LARGE' });
    expect(await store.media.get('there.test', 'big')).toBeUndefined();
    expect(fetches).toEqual(['there.test/big']);
  });

  // Issue 11 defect 9: with media on a volume one replica cannot see (or lost), the record said "cached" and
  // every download was a 404 for good.
  it('treats a remote record whose bytes are missing as a cache miss: fetched again (defect 9)', async () => {
    const first = await repository.download('there.test', 'gone', { allowRemote: true });
    blobs.blobs.clear();
    expect(await repository.download('there.test', 'gone', { allowRemote: true })).toEqual(first);
    expect(fetches).toEqual(['there.test/gone', 'there.test/gone']);
    expect(blobs.blobs.size).toBe(1);
    blobs.blobs.clear();
    await expect(repository.download('there.test', 'gone', { allowRemote: false })).rejects.toMatchObject({ status: 404 });
    remoteAnswer = async () => {
      throw new Error('origin down');
    };
    await expect(repository.download('there.test', 'gone', { allowRemote: true })).rejects.toThrow('origin down');
    // Local media with its bytes missing stays a 404: there is nowhere to fetch it from.
    const { record } = await repository.upload({ bytes: Buffer.from('mine'), contentType: 'text/plain', uploadName: null, uploader: '@u:here.test' });
    blobs.blobs.clear();
    await expect(repository.download('here.test', record.mediaId, { allowRemote: true })).rejects.toMatchObject({ status: 404 });
    expect(fetches).toHaveLength(3);
  });

  it('reserved uploads: pending until uploaded, once, by the creator, before expiry', async () => {
    const { contentUri, unusedExpiresAt } = await repository.reserve('@u:here.test');
    expect(unusedExpiresAt).toBe(1_100);
    const mediaId = contentUri.split('/').pop()!;
    await expect(repository.download('here.test', mediaId, { allowRemote: true })).rejects.toMatchObject({ status: 504, errcode: 'M_NOT_YET_UPLOADED' });
    const content = { bytes: Buffer.from('late'), contentType: 'text/plain', uploadName: null, uploader: '@u:here.test' };
    await expect(repository.uploadReserved('here.test', mediaId, { ...content, uploader: '@v:here.test' })).rejects.toMatchObject({ status: 403 });
    await expect(repository.uploadReserved('here.test', 'unknownId', content)).rejects.toMatchObject({ status: 404 });
    await repository.uploadReserved('here.test', mediaId, content);
    await expect(repository.uploadReserved('here.test', mediaId, content)).rejects.toMatchObject({ status: 409, errcode: 'M_CANNOT_OVERWRITE_MEDIA' });
    expect((await repository.download('here.test', mediaId, { allowRemote: true })).bytes.toString()).toBe('late');

    const expiring = (await repository.reserve('@u:here.test')).contentUri.split('/').pop()!;
    now = 2_000;
    await expect(repository.uploadReserved('here.test', expiring, content)).rejects.toMatchObject({ status: 404 });
    await expect(repository.download('here.test', expiring, { allowRemote: true })).rejects.toMatchObject({ status: 404 });
  });
});
