import { FederationClientError, FederationHttpError, type BytesResponse, type FederationRequest } from '@fedgate/federation-client';
import { MatrixError } from '@fedgate/service-kit';
import { buildMultipartMixed } from './multipart-media';
import { FederationMediaSource } from './remote-media';

type Answer = (request: FederationRequest & { accept?: string }) => BytesResponse;

function source(answer: Answer, urls: Record<string, BytesResponse> = {}) {
  const requests: Array<FederationRequest & { accept?: string }> = [];
  const fetchedUrls: string[] = [];
  const client = {
    requestBytes: async (request: FederationRequest & { accept?: string }) => {
      requests.push(request);
      return answer(request);
    },
    getUrl: async (url: string) => {
      fetchedUrls.push(url);
      const found = urls[url];
      if (!found) throw new FederationHttpError(404, { errcode: 'M_NOT_FOUND' }, 'cdn');
      return found;
    },
  };
  return { media: new FederationMediaSource(client, { maxBytes: 100, timeoutMs: 1_000 }), requests, fetchedUrls };
}

const multipart = (second: Parameters<typeof buildMultipartMixed>[1]): BytesResponse => {
  const { contentType, body } = buildMultipartMixed({}, second);
  return { status: 200, headers: { 'content-type': contentType }, body };
};

describe('fetching remote media', () => {
  it('asks the authenticated federation endpoint, signed, and takes type and name from the bytes part', async () => {
    const { media, requests } = source(() => multipart({ contentType: 'image/png', contentDisposition: 'inline; filename="x.png"', body: Buffer.from('png') }));
    expect(await media.download('remote.test', 'abc')).toEqual({ contentType: 'image/png', uploadName: 'x.png', bytes: Buffer.from('png') });
    expect(requests).toEqual([expect.objectContaining({ destination: 'remote.test', method: 'GET', path: '/_matrix/federation/v1/media/download/abc', accept: 'multipart/mixed' })]);
    expect(requests[0].signed).toBeUndefined();
  });

  it('follows a Location part', async () => {
    const { media, fetchedUrls } = source(() => multipart({ location: 'https://cdn.test/abc' }), {
      'https://cdn.test/abc': { status: 200, headers: { 'content-type': 'text/plain', 'content-disposition': 'attachment; filename="n.txt"' }, body: Buffer.from('hi') },
    });
    expect(await media.download('remote.test', 'abc')).toEqual({ contentType: 'text/plain', uploadName: 'n.txt', bytes: Buffer.from('hi') });
    expect(fetchedUrls).toEqual(['https://cdn.test/abc']);
  });

  it('falls back to the deprecated unauthenticated endpoint on 404 M_UNRECOGNIZED, with allow_remote=false', async () => {
    const { media, requests } = source((request) => {
      if (request.path.startsWith('/_matrix/federation/')) throw new FederationHttpError(404, { errcode: 'M_UNRECOGNIZED' }, 'old.test');
      return { status: 200, headers: { 'content-type': 'image/gif' }, body: Buffer.from('gif') };
    });
    expect(await media.download('old.test', 'abc')).toEqual({ contentType: 'image/gif', uploadName: null, bytes: Buffer.from('gif') });
    expect(requests[1]).toMatchObject({ path: '/_matrix/media/v3/download/old.test/abc', query: { allow_remote: 'false' }, signed: false });
  });

  it('maps what goes wrong to Matrix errors: not found, too large, unreachable, malformed', async () => {
    const failing = (error: Error) => source(() => { throw error; }).media.download('remote.test', 'abc');
    await expect(failing(new FederationHttpError(404, { errcode: 'M_NOT_FOUND' }, 'remote.test'))).rejects.toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
    await expect(failing(new FederationClientError('RESPONSE_TOO_LARGE', 'big'))).rejects.toMatchObject({ status: 502, errcode: 'M_TOO_LARGE' });
    await expect(failing(new FederationClientError('UNREACHABLE', 'down'))).rejects.toMatchObject({ status: 502, errcode: 'M_UNKNOWN' });
    const malformed = source(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') }));
    await expect(malformed.media.download('remote.test', 'abc')).rejects.toBeInstanceOf(MatrixError);
    const oversized = source(() => multipart({ contentType: 'image/png', body: Buffer.alloc(101) }));
    await expect(oversized.media.download('remote.test', 'abc')).rejects.toMatchObject({ status: 502, errcode: 'M_TOO_LARGE' });
  });
});
