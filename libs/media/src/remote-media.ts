// Fetching media that lives on another server: the authenticated federation endpoint first (signed
// with X-Matrix by the federation client), the deprecated `/_matrix/media/v3/download` only when the
// remote does not know that endpoint (404 M_UNRECOGNIZED), with allow_remote=false as the spec requires.
import { FederationClientError, FederationHttpError, type BytesResponse, type FederationHttpClient } from '@fedgate/federation-client';
import { MatrixError } from '@fedgate/service-kit';
import { MultipartError, parseFederationMedia } from './multipart-media';
import { fileNameFromDisposition } from './serving-headers';

export interface FetchedMedia {
  contentType: string;
  uploadName: string | null;
  bytes: Buffer;
}

export interface RemoteMediaSource {
  download(serverName: string, mediaId: string): Promise<FetchedMedia>;
}

export interface RemoteMediaOptions {
  /** Largest media accepted from a remote (the upload limit: what we would not store, we do not fetch). */
  maxBytes: number;
  timeoutMs: number;
}

/** Room for the multipart framing and metadata around the bytes. */
const MULTIPART_OVERHEAD = 64 * 1024;

export class FederationMediaSource implements RemoteMediaSource {
  constructor(
    private readonly client: Pick<FederationHttpClient, 'requestBytes' | 'getUrl'>,
    private readonly options: RemoteMediaOptions,
  ) {}

  async download(serverName: string, mediaId: string): Promise<FetchedMedia> {
    try {
      return await this.viaFederation(serverName, mediaId);
    } catch (err) {
      if (err instanceof FederationHttpError && err.status === 404 && err.errcode === 'M_UNRECOGNIZED') {
        try {
          return await this.viaLegacyEndpoint(serverName, mediaId);
        } catch (legacyErr) {
          throw remoteFailure(legacyErr, serverName);
        }
      }
      throw remoteFailure(err, serverName);
    }
  }

  private async viaFederation(serverName: string, mediaId: string): Promise<FetchedMedia> {
    const response = await this.client.requestBytes({
      destination: serverName,
      method: 'GET',
      path: `/_matrix/federation/v1/media/download/${encodeURIComponent(mediaId)}`,
      query: { timeout_ms: Math.min(this.options.timeoutMs, 20_000) },
      accept: 'multipart/mixed',
      timeoutMs: this.options.timeoutMs,
      maxResponseBytes: this.options.maxBytes + MULTIPART_OVERHEAD,
    });
    let content;
    try {
      content = parseFederationMedia(response.headers['content-type'], response.body);
    } catch (err) {
      if (err instanceof MultipartError) throw new FederationClientError('INVALID_RESPONSE', `${serverName} answered a malformed media response: ${err.message}`);
      throw err;
    }
    if (content.kind === 'location') {
      const redirected = await this.client.getUrl(content.location, { timeoutMs: this.options.timeoutMs, maxResponseBytes: this.options.maxBytes });
      return this.fromPlainResponse(redirected);
    }
    if (content.body.length > this.options.maxBytes) throw new FederationClientError('RESPONSE_TOO_LARGE', `media from ${serverName} is larger than ${this.options.maxBytes} bytes`);
    return { contentType: content.contentType, uploadName: fileNameFromDisposition(content.contentDisposition ?? undefined), bytes: Buffer.from(content.body) };
  }

  private async viaLegacyEndpoint(serverName: string, mediaId: string): Promise<FetchedMedia> {
    const response = await this.client.requestBytes({
      destination: serverName,
      method: 'GET',
      path: `/_matrix/media/v3/download/${encodeURIComponent(serverName)}/${encodeURIComponent(mediaId)}`,
      query: { allow_remote: 'false' },
      signed: false,
      timeoutMs: this.options.timeoutMs,
      maxResponseBytes: this.options.maxBytes,
    });
    return this.fromPlainResponse(response);
  }

  private fromPlainResponse(response: BytesResponse): FetchedMedia {
    return {
      contentType: response.headers['content-type'] || 'application/octet-stream',
      uploadName: fileNameFromDisposition(response.headers['content-disposition']),
      bytes: response.body,
    };
  }
}

/** What a client is told when remote media cannot be had (502 for the remote's faults, as the spec does for size). */
function remoteFailure(err: unknown, serverName: string): MatrixError {
  if (err instanceof MatrixError) return err;
  if (err instanceof FederationHttpError) {
    if (err.status === 404) return MatrixError.notFound(`${serverName} does not have that media`);
    if (err.status === 504 && err.errcode === 'M_NOT_YET_UPLOADED') return new MatrixError(504, 'M_NOT_YET_UPLOADED', 'Content has not yet been uploaded');
    if (err.errcode === 'M_TOO_LARGE') return new MatrixError(502, 'M_TOO_LARGE', `Remote content on ${serverName} is too large`);
    return new MatrixError(502, 'M_UNKNOWN', `Fetching media from ${serverName} failed: ${err.message}`);
  }
  if (err instanceof FederationClientError) {
    if (err.code === 'RESPONSE_TOO_LARGE') return new MatrixError(502, 'M_TOO_LARGE', `Remote content on ${serverName} is too large`);
    return new MatrixError(502, 'M_UNKNOWN', `Fetching media from ${serverName} failed (${err.code}): ${err.message}`);
  }
  throw err;
}
