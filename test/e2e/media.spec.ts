// Media both ways through real HTTP: the test bridge's virtual users upload and download through
// chat-sync with matrix-js-sdk, and a second fedgate fetches the first one's media over the
// authenticated federation endpoint (X-Matrix, multipart/mixed) and serves it from its cache.
// Two servers in this process, each with its federation (HTTPS, test CA) and client-server listeners.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { Agent, request } from 'undici';
import { createTestCa, type TestCertificateAuthority } from '@fedgate/testing';
import { startChatSyncGateway, type ChatSyncGateway } from './chat-sync-gateway';

jest.setTimeout(60_000);

const MAX_UPLOAD = 256 * 1024;

type Server = ChatSyncGateway;

/** Client-server and federation (ingress only: media needs no state-resolver), the upload limit low. */
const startServer = (ca: TestCertificateAuthority, name: string): Promise<Server> =>
  startChatSyncGateway({ name: `media-${name}`, federation: { ca }, bridge: { prefix: `${name}chat`, id: `bridge-${name}` }, workers: false, config: { limits: { maxUploadBytes: MAX_UPLOAD } } });

/** A 64x48 PNG: left half red, right half blue (so a crop is visibly a crop). */
async function testImage(): Promise<Buffer> {
  const left = await sharp({ create: { width: 32, height: 48, channels: 3, background: '#ff0000' } }).png().toBuffer();
  return sharp({ create: { width: 64, height: 48, channels: 3, background: '#0000ff' } })
    .composite([{ input: left, left: 0, top: 0 }])
    .png()
    .toBuffer();
}

async function errcodeOf(response: Response): Promise<string> {
  return ((await response.json()) as { errcode: string }).errcode;
}

async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch {
    return [];
  }
}

describe('media through chat-sync and federation', () => {
  let ca: TestCertificateAuthority;
  let a: Server;
  let b: Server;
  let alice: string;
  let bob: string;
  let image: Buffer;
  let imageUri: string;

  beforeAll(async () => {
    ca = createTestCa('media test CA');
    a = await startServer(ca, 'a');
    b = await startServer(ca, 'b');
    alice = await a.bridge.registerVirtualUser('achat_alice');
    bob = await b.bridge.registerVirtualUser('bchat_bob');
    image = await testImage();
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  const authed = (server: Server, url: string, init: RequestInit = {}) =>
    fetch(url.startsWith('http') ? url : `${server.base}${url}`, { ...init, headers: { authorization: `Bearer ${server.bridge.registration.as_token}`, ...(init.headers ?? {}) } });

  it('answers the upload limit on both config endpoints', async () => {
    for (const route of ['/_matrix/client/v1/media/config', '/_matrix/media/v3/config']) {
      const response = await authed(a, route);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ 'm.upload.size': MAX_UPLOAD });
    }
  });

  it('uploads an image as a virtual user and downloads it byte-identical with its type and name', async () => {
    const client = a.bridge.asUser(alice);
    const uploaded = await client.uploadContent(image, { name: 'cat picture.png', type: 'image/png' });
    imageUri = uploaded.content_uri;
    expect(imageUri).toMatch(new RegExp(`^mxc://${a.serverName}/[A-Za-z0-9_-]+$`));
    const record = await a.platform.store.media.get(a.serverName, imageUri.split('/').pop()!);
    expect(record).toMatchObject({ contentType: 'image/png', size: image.length, uploadName: 'cat picture.png', uploader: alice });

    const url = client.mxcUrlToHttp(imageUri, undefined, undefined, undefined, false, false, true)!;
    expect(url).toContain('/_matrix/client/v1/media/download/');
    const response = await authed(a, url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('content-disposition')).toBe('inline; filename="cat picture.png"');
    expect(response.headers.get('content-security-policy')).toContain('sandbox');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(Buffer.from(await response.arrayBuffer()).equals(image)).toBe(true);

    const renamed = await authed(a, `/_matrix/client/v1/media/download/${imageUri.slice(6)}/other.png`);
    expect(renamed.headers.get('content-disposition')).toBe('inline; filename="other.png"');
    const legacyUrl = client.mxcUrlToHttp(imageUri, undefined, undefined, undefined, false, false, false)!;
    // Issue 18 defect 12: unauthenticated legacy downloads are off unless configured.
    const anonymous = await fetch(legacyUrl);
    expect(anonymous.status).toBe(401);
    expect(await errcodeOf(anonymous)).toBe('M_MISSING_TOKEN');
    const legacy = await authed(a, legacyUrl);
    expect(legacy.status).toBe(200);
    expect(Buffer.from(await legacy.arrayBuffer()).equals(image)).toBe(true);
  });

  it('serves thumbnails of the right size, crop and scale, and the original when asked for more', async () => {
    const client = a.bridge.asUser(alice);
    const crop = await authed(a, client.mxcUrlToHttp(imageUri, 32, 32, 'crop', false, false, true)!);
    expect(crop.status).toBe(200);
    expect(crop.headers.get('content-type')).toBe('image/png');
    const cropped = await sharp(Buffer.from(await crop.arrayBuffer())).metadata();
    expect([cropped.width, cropped.height]).toEqual([32, 32]);

    const scale = await authed(a, `/_matrix/client/v1/media/thumbnail/${imageUri.slice(6)}?width=32&height=32&method=scale`);
    const scaled = await sharp(Buffer.from(await scale.arrayBuffer())).metadata();
    expect([scaled.width, scaled.height]).toEqual([32, 24]);

    const larger = await authed(a, `/_matrix/client/v1/media/thumbnail/${imageUri.slice(6)}?width=640&height=480&method=scale`);
    expect(Buffer.from(await larger.arrayBuffer()).equals(image)).toBe(true);

    expect(await a.platform.store.media.getThumbnail(a.serverName, imageUri.split('/').pop()!, '32x32-crop')).toMatchObject({ width: 32, height: 32 });
    const bad = await authed(a, `/_matrix/client/v1/media/thumbnail/${imageUri.slice(6)}?width=0&height=32`);
    expect(bad.status).toBe(400);
    expect((await errcodeOf(bad))).toBe('M_INVALID_PARAM');
  });

  it('keeps a non-image as an attachment and refuses to thumbnail it', async () => {
    const client = a.bridge.asUser(alice);
    const html = Buffer.from('<script>alert(1)</script>');
    const { content_uri } = await client.uploadContent(html, { name: 'page.html', type: 'text/html' });
    const response = await authed(a, `/_matrix/client/v1/media/download/${content_uri.slice(6)}`);
    expect(response.headers.get('content-type')).toBe('text/html');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="page.html"');
    const thumbnail = await authed(a, `/_matrix/client/v1/media/thumbnail/${content_uri.slice(6)}?width=32&height=32`);
    expect(thumbnail.status).toBe(400);
    expect((await errcodeOf(thumbnail))).toBe('M_UNKNOWN');
  });

  it('refuses an oversized upload with 413 M_TOO_LARGE and stores nothing', async () => {
    const before = await filesUnder(path.join(a.dataDir, 'media'));
    const response = await authed(a, `/_matrix/media/v3/upload?filename=big.bin&user_id=${encodeURIComponent(alice)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(MAX_UPLOAD + 1, 7),
    });
    expect(response.status).toBe(413);
    expect((await errcodeOf(response))).toBe('M_TOO_LARGE');
    expect(await filesUnder(path.join(a.dataDir, 'media'))).toEqual(before);
  });

  it('answers 401 for a wrong or missing token, and 404 for unknown media', async () => {
    const wrong = await fetch(`${a.base}/_matrix/media/v3/upload`, { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'image/png' }, body: image });
    expect(wrong.status).toBe(401);
    expect((await errcodeOf(wrong))).toBe('M_UNKNOWN_TOKEN');
    const missing = await fetch(`${a.base}/_matrix/client/v1/media/download/${imageUri.slice(6)}`);
    expect(missing.status).toBe(401);
    expect((await errcodeOf(missing))).toBe('M_MISSING_TOKEN');
    const unknown = await authed(a, `/_matrix/client/v1/media/download/${a.serverName}/doesNotExist`);
    expect(unknown.status).toBe(404);
    expect((await errcodeOf(unknown))).toBe('M_NOT_FOUND');
    const traversal = await authed(a, `/_matrix/client/v1/media/download/${a.serverName}/..%2F..%2Fetc`);
    expect(traversal.status).toBe(404);
  });

  it('uploads a JSON file and a file without a content type as bytes', async () => {
    const json = await authed(a, '/_matrix/media/v3/upload?filename=data.json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"not": parsed' });
    expect(json.status).toBe(200);
    const { content_uri } = (await json.json()) as { content_uri: string };
    const back = await authed(a, `/_matrix/client/v1/media/download/${content_uri.slice(6)}`);
    expect(await back.text()).toBe('{"not": parsed');
    const untyped = await authed(a, '/_matrix/media/v3/upload', { method: 'POST', body: new Uint8Array([0, 1, 2, 255]) });
    expect(untyped.status).toBe(200);
    const record = await a.platform.store.media.get(a.serverName, ((await untyped.json()) as { content_uri: string }).content_uri.split('/').pop()!);
    expect(record?.contentType).toBe('application/octet-stream');
  });

  it('creates an mxc URI first and takes its bytes once, from its creator only', async () => {
    const created = await authed(a, `/_matrix/media/v1/create?user_id=${encodeURIComponent(alice)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const { content_uri, unused_expires_at } = (await created.json()) as { content_uri: string; unused_expires_at: number };
    expect(unused_expires_at).toBeGreaterThan(Date.now());
    const pending = await authed(a, `/_matrix/client/v1/media/download/${content_uri.slice(6)}`);
    expect(pending.status).toBe(504);
    expect((await errcodeOf(pending))).toBe('M_NOT_YET_UPLOADED');
    const put = (userId: string) =>
      authed(a, `/_matrix/media/v3/upload/${content_uri.slice(6)}?filename=late.txt&user_id=${encodeURIComponent(userId)}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'late bytes' });
    const otherUser = await a.bridge.registerVirtualUser('achat_carol');
    expect((await put(otherUser)).status).toBe(403);
    expect((await put(alice)).status).toBe(200);
    const again = await put(alice);
    expect(again.status).toBe(409);
    expect((await errcodeOf(again))).toBe('M_CANNOT_OVERWRITE_MEDIA');
    const done = await authed(a, `/_matrix/client/v1/media/download/${content_uri.slice(6)}`);
    expect(await done.text()).toBe('late bytes');
    expect(done.headers.get('content-disposition')).toBe('inline; filename="late.txt"');
  });

  it('downloads remote media through the local server: federation multipart fetch, then served from cache', async () => {
    const client = b.bridge.asUser(bob);
    const url = client.mxcUrlToHttp(imageUri, undefined, undefined, undefined, false, false, true)!;
    expect(url.startsWith(b.base)).toBe(true);
    const response = await authed(b, url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('content-disposition')).toBe('inline; filename="cat picture.png"');
    expect(Buffer.from(await response.arrayBuffer()).equals(image)).toBe(true);

    const mediaId = imageUri.split('/').pop()!;
    expect(await b.platform.store.media.get(a.serverName, mediaId)).toMatchObject({ origin: a.serverName, size: image.length, uploader: null });
    const audited = await a.platform.store.audit.query({ origin: b.serverName });
    expect(audited.some((entry) => entry.path.includes('/_matrix/federation/v1/media/download/') && entry.status === 200)).toBe(true);

    const thumbnail = await authed(b, client.mxcUrlToHttp(imageUri, 32, 32, 'crop', false, false, true)!);
    expect(thumbnail.status).toBe(200);
    const meta = await sharp(Buffer.from(await thumbnail.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([32, 32]);

    // Cached: the origin being unreachable no longer matters.
    const fetchesBefore = (await a.platform.store.audit.query({ origin: b.serverName })).length;
    const again = await authed(b, url);
    expect(Buffer.from(await again.arrayBuffer()).equals(image)).toBe(true);
    expect((await a.platform.store.audit.query({ origin: b.serverName })).length).toBe(fetchesBefore);
  });

  it('answers remote media the origin does not have with 404, and allow_remote=false without fetching', async () => {
    const unknown = await authed(b, `/_matrix/client/v1/media/download/${a.serverName}/neverUploaded`);
    expect(unknown.status).toBe(404);
    expect((await errcodeOf(unknown))).toBe('M_NOT_FOUND');
    const noRemote = await authed(b, `/_matrix/media/v3/download/${a.serverName}/alsoUnknown?allow_remote=false`);
    expect(noRemote.status).toBe(404);
  });

  it('refuses unsigned federation media requests', async () => {
    const mediaId = imageUri.split('/').pop()!;
    const dispatcher = new Agent({ connect: { ca: ca.certPem } });
    try {
      const response = await request(`https://${a.serverName}/_matrix/federation/v1/media/download/${mediaId}`, { dispatcher });
      expect(response.statusCode).toBe(401);
      expect(((await response.body.json()) as { errcode: string }).errcode).toBe('M_UNAUTHORIZED');
    } finally {
      await dispatcher.close();
    }
  });
});
