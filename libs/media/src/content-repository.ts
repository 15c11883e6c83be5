// The content repository: uploads (direct, or reserved by /create and PUT later), downloads of local
// media and of remote media (fetched once, then served from the cache like local media), thumbnails.
// Bytes go to the blob store before their record goes to the store, so a record never names a
// missing blob; a failed upload leaves at most an unreferenced blob.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { MediaRecord, MediaRepository } from '@fedgate/store';
import { MatrixError } from '@fedgate/service-kit';
import { blobKey, BlobTooLargeError, type BlobStore } from './blob-store';
import { checkMediaAddress, mxcUri, newMediaId } from './media-id';
import type { RemoteMediaSource } from './remote-media';
import { ThumbnailGate, servedThumbnailRequest } from './thumbnail-limits';
import { makeThumbnail, ThumbnailError, thumbnailVariant, type ThumbnailRequest } from './thumbnailer';

export interface ContentRepositoryOptions {
  serverName: string;
  /** limits.maxUploadBytes: the largest upload accepted and the largest remote media fetched. */
  maxUploadBytes: number;
  /** How long an ID from /create waits for its bytes (the spec recommends 24 hours). */
  pendingUploadMs?: number;
  now?: () => number;
  /** Bounds thumbnail work (default: DEFAULT_THUMBNAIL_GATE per repository). */
  thumbnailGate?: ThumbnailGate;
}

export interface NewContent {
  /** The bytes, or a stream of them (an HTTP upload), written to disk as they arrive. */
  bytes: Buffer | Readable;
  contentType: string;
  uploadName: string | null;
  uploader: string;
}

export interface ServedContent {
  contentType: string;
  uploadName: string | null;
  bytes: Buffer;
}

export interface ReadOptions {
  /** False: never contact another server (legacy `allow_remote=false`, loops). */
  allowRemote: boolean;
}

export class ContentRepository {
  private readonly fetching = new Map<string, Promise<MediaRecord>>();
  private readonly now: () => number;
  private readonly thumbnails: ThumbnailGate;

  constructor(
    private readonly records: MediaRepository,
    private readonly blobs: BlobStore,
    private readonly remote: RemoteMediaSource | undefined,
    private readonly options: ContentRepositoryOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.thumbnails = options.thumbnailGate ?? new ThumbnailGate();
  }

  get serverName(): string {
    return this.options.serverName;
  }

  config(): { 'm.upload.size': number } {
    return { 'm.upload.size': this.options.maxUploadBytes };
  }

  async upload(content: NewContent): Promise<{ contentUri: string; record: MediaRecord }> {
    this.checkSize(content.bytes);
    const mediaId = newMediaId();
    const record = await this.storeBytes(this.options.serverName, mediaId, content);
    await this.records.put(record);
    return { contentUri: mxcUri(this.options.serverName, mediaId), record };
  }

  /** `POST /_matrix/media/v1/create`: an ID whose bytes the same user uploads later. */
  async reserve(uploader: string): Promise<{ contentUri: string; unusedExpiresAt: number }> {
    const mediaId = newMediaId();
    const unusedExpiresAt = this.now() + (this.options.pendingUploadMs ?? 24 * 3_600_000);
    await this.records.put({
      origin: this.options.serverName,
      mediaId,
      contentType: 'application/octet-stream',
      size: 0,
      uploadName: null,
      sha256: '',
      location: '',
      createdTs: this.now(),
      uploader,
      pendingUntilTs: unusedExpiresAt,
    });
    return { contentUri: mxcUri(this.options.serverName, mediaId), unusedExpiresAt };
  }

  /** `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}` for a reserved ID. */
  async uploadReserved(serverName: string, mediaId: string, content: NewContent): Promise<void> {
    checkMediaAddress(serverName, mediaId);
    const existing = serverName === this.options.serverName ? await this.records.get(serverName, mediaId) : undefined;
    if (!existing) throw MatrixError.notFound('Unknown media ID');
    if (existing.pendingUntilTs === undefined) throw new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded');
    if (existing.uploader !== content.uploader) throw MatrixError.forbidden('This media ID was created by another user');
    if (existing.pendingUntilTs < this.now()) throw MatrixError.notFound('The media ID has expired');
    this.checkSize(content.bytes);
    const record = await this.storeBytes(serverName, mediaId, content, existing.createdTs);
    if (!(await this.records.completePending(record))) throw new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded');
  }

  /** The media's bytes: local, cached remote, or fetched from its origin now. */
  async download(serverName: string, mediaId: string, options: ReadOptions): Promise<ServedContent> {
    const record = await this.recordFor(serverName, mediaId, options);
    return { contentType: record.contentType, uploadName: record.uploadName, bytes: await this.bytesOf(record, options) };
  }

  /** For other servers: only media that originates here. */
  async downloadLocal(mediaId: string): Promise<ServedContent> {
    return this.download(this.options.serverName, mediaId, { allowRemote: false });
  }

  /**
   * A thumbnail of the media: the requested size rounded up to a served one (see thumbnail-limits), made
   * once and cached by that size, under the process's thumbnail concurrency bound.
   */
  async thumbnail(serverName: string, mediaId: string, asked: ThumbnailRequest, options: ReadOptions): Promise<ServedContent> {
    const record = await this.recordFor(serverName, mediaId, options);
    const request = servedThumbnailRequest(asked);
    const variant = thumbnailVariant(request);
    const cached = await this.cachedThumbnail(record, variant);
    if (cached) return cached;
    return this.thumbnails.run(`${record.origin}/${record.mediaId}/${variant}`, async () => (await this.cachedThumbnail(record, variant)) ?? this.makeAndCacheThumbnail(record, request, variant, options));
  }

  private async cachedThumbnail(record: MediaRecord, variant: string): Promise<ServedContent | undefined> {
    const cached = await this.records.getThumbnail(record.origin, record.mediaId, variant);
    const bytes = cached && (await this.blobs.get(cached.location));
    return cached && bytes ? { contentType: cached.contentType, uploadName: null, bytes } : undefined;
  }

  private async makeAndCacheThumbnail(record: MediaRecord, request: ThumbnailRequest, variant: string, options: ReadOptions): Promise<ServedContent> {
    const local = record.origin === this.options.serverName;
    const original = await this.bytesOf(record, options);
    let outcome;
    try {
      outcome = await makeThumbnail(original, record.contentType, request);
    } catch (err) {
      if (!(err instanceof ThumbnailError)) throw err;
      if (err.reason === 'too_large') throw local ? MatrixError.tooLarge(err.message) : new MatrixError(502, 'M_TOO_LARGE', err.message);
      throw new MatrixError(400, 'M_UNKNOWN', err.message);
    }
    if (outcome.kind === 'original') return { contentType: record.contentType, uploadName: record.uploadName, bytes: original };
    const { thumbnail } = outcome;
    const location = blobKey('thumbnail', record.origin, record.mediaId, variant);
    await this.blobs.put(location, thumbnail.bytes);
    await this.records.putThumbnail({
      origin: record.origin,
      mediaId: record.mediaId,
      variant,
      contentType: thumbnail.contentType,
      size: thumbnail.bytes.length,
      width: thumbnail.width,
      height: thumbnail.height,
      location,
      createdTs: this.now(),
    });
    return { contentType: thumbnail.contentType, uploadName: null, bytes: thumbnail.bytes };
  }

  private checkSize(bytes: Buffer | Readable): void {
    if (Buffer.isBuffer(bytes) && bytes.length > this.options.maxUploadBytes) throw this.tooLarge();
  }

  private tooLarge(): MatrixError {
    return MatrixError.tooLarge(`Upload is larger than ${this.options.maxUploadBytes} bytes`);
  }

  private async storeBytes(origin: string, mediaId: string, content: NewContent, createdTs = this.now()): Promise<MediaRecord> {
    const location = blobKey('local', origin, mediaId);
    let written: { size: number; sha256: string };
    if (Buffer.isBuffer(content.bytes)) {
      await this.blobs.put(location, content.bytes);
      written = { size: content.bytes.length, sha256: createHash('sha256').update(content.bytes).digest('base64url') };
    } else {
      try {
        written = await this.blobs.putStream(location, content.bytes, this.options.maxUploadBytes);
      } catch (err) {
        if (err instanceof BlobTooLargeError) throw this.tooLarge();
        throw err;
      }
    }
    return {
      origin,
      mediaId,
      contentType: content.contentType,
      size: written.size,
      uploadName: content.uploadName,
      sha256: written.sha256,
      location,
      createdTs,
      uploader: content.uploader,
    };
  }

  private async recordFor(serverName: string, mediaId: string, options: ReadOptions): Promise<MediaRecord> {
    checkMediaAddress(serverName, mediaId);
    const stored = await this.records.get(serverName, mediaId);
    if (stored) {
      if (stored.pendingUntilTs !== undefined) {
        if (stored.pendingUntilTs < this.now()) throw MatrixError.notFound('Unknown media ID');
        throw new MatrixError(504, 'M_NOT_YET_UPLOADED', 'Content has not yet been uploaded');
      }
      return stored;
    }
    if (serverName === this.options.serverName) throw MatrixError.notFound('Unknown media ID');
    if (!options.allowRemote || !this.remote) throw MatrixError.notFound('Remote media is not fetched here');
    return this.fetchRemote(serverName, mediaId);
  }

  /** One fetch per remote item at a time; concurrent requests share it. */
  private fetchRemote(serverName: string, mediaId: string): Promise<MediaRecord> {
    const key = `${serverName}/${mediaId}`;
    let pending = this.fetching.get(key);
    if (!pending) {
      pending = (async () => {
        const fetched = await this.remote!.download(serverName, mediaId);
        if (fetched.bytes.length > this.options.maxUploadBytes) throw new MatrixError(502, 'M_TOO_LARGE', `Remote content on ${serverName} is too large`);
        const location = blobKey('remote', serverName, mediaId);
        await this.blobs.put(location, fetched.bytes);
        return this.records.put({
          origin: serverName,
          mediaId,
          contentType: fetched.contentType,
          size: fetched.bytes.length,
          uploadName: fetched.uploadName,
          sha256: createHash('sha256').update(fetched.bytes).digest('base64url'),
          location,
          createdTs: this.now(),
          uploader: null,
        });
      })().finally(() => this.fetching.delete(key));
      this.fetching.set(key, pending);
    }
    return pending;
  }

  private async bytesOf(record: MediaRecord, options: ReadOptions): Promise<Buffer> {
    const bytes = await this.blobs.get(record.location);
    if (bytes) return bytes;
    // Remote media whose bytes are gone (a lost or unshared volume, a replica with its own disk) is a cache
    // miss: fetched again from its origin into the same place.
    if (record.origin !== this.options.serverName && options.allowRemote && this.remote) {
      const fetched = await this.fetchRemote(record.origin, record.mediaId);
      const refetched = await this.blobs.get(fetched.location);
      if (refetched) return refetched;
    }
    throw MatrixError.notFound('The media is recorded but its content is missing');
  }
}
