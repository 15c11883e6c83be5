// Issue 14: uploads are streamed to disk (a temporary file, hashed as it is written), not held in memory up to
// the upload limit. The gateway runs in its own process, so its memory is measured apart from the test's: the
// upload is paused three quarters of the way, once the gateway has written most of it to its temporary file,
// and the gateway's own metrics must show no matching growth of its memory (held in memory, the growth would be
// at least what was received; streamed, it stays under half of it). An upload cut off leaves nothing.
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import path from 'node:path';
import { createTestCa, openInstanceStore, startFedgate, type FedgateInstance } from '@fedgate/testing';

jest.setTimeout(100_000);

const MiB = 1024 * 1024;
// Larger than what V8 lets garbage Buffers reach before it collects them (its external-memory soft limit, 64 MiB):
// memory read mid-upload may include up to that much already-written garbage, so the upload must be well above it.
const UPLOAD = 256 * MiB;
const PAUSE_AT = 192 * MiB;

describe('media uploads streamed to disk (issue 14)', () => {
  let gateway: FedgateInstance;
  let userId: string;

  beforeAll(async () => {
    gateway = await startFedgate({ shape: 'embedded', ca: createTestCa(), name: 'upload', config: { limits: { maxUploadBytes: 2 * UPLOAD } } });
    userId = await gateway.bridge!.registerVirtualUser('uploadchat_uma');
  });
  afterAll(async () => {
    await gateway?.destroy();
  });

  const mediaDir = () => path.join(gateway.dataDir, 'media');
  async function filesUnderMedia(): Promise<{ name: string; size: number }[]> {
    let entries;
    try {
      entries = (await readdir(mediaDir(), { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    } catch {
      return [];
    }
    // A temporary file listed may be gone by the time it is measured (the gateway removing a cut-off upload).
    const sized = await Promise.all(entries.map(async (e) => ({ name: e.name, size: (await stat(path.join(e.parentPath, e.name)).catch(() => undefined))?.size })));
    return sized.filter((f): f is { name: string; size: number } => f.size !== undefined);
  }
  /** Polls until `check` holds; fails with `why` when it never does. A wait, not an assertion on time. */
  async function until(check: () => Promise<boolean>, why: string, attempts = 600): Promise<void> {
    for (let i = 0; i < attempts; i++) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(why);
  }
  /** The gateway's memory that an upload held in memory would grow: V8 heap used plus memory outside it (Buffers). */
  async function gatewayMemory(): Promise<number> {
    const text = await (await fetch(`${gateway.clientServerUrl}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    const total = metric('nodejs_heap_size_used_bytes') + metric('nodejs_external_memory_bytes');
    if (!Number.isFinite(total)) throw new Error('the gateway does not report its heap and external memory');
    return total;
  }
  function startUpload(length: number): { req: ClientRequest; response: Promise<IncomingMessage> } {
    const url = new URL(`/_matrix/media/v3/upload?filename=big.bin&user_id=${encodeURIComponent(userId)}`, gateway.clientServerUrl);
    const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${gateway.bridge!.registration.as_token}`, 'content-type': 'application/octet-stream', 'content-length': String(length) } });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    return { req, response };
  }
  async function write(req: ClientRequest, bytes: number, hash: ReturnType<typeof createHash>): Promise<void> {
    for (let sent = 0; sent < bytes; sent += MiB) {
      const chunk = Buffer.alloc(MiB, sent / MiB);
      hash.update(chunk);
      if (!req.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const closed = () => reject(new Error('the gateway closed the upload'));
          req.once('close', closed);
          req.once('drain', () => {
            req.off('close', closed);
            resolve();
          });
        });
      }
    }
  }
  const temporaryBytes = async () => (await filesUnderMedia()).filter((f) => f.name.endsWith('.tmp')).reduce((sum, f) => sum + f.size, 0);

  it(`a ${UPLOAD / MiB} MiB upload does not grow the gateway's memory by its size, and arrives whole`, async () => {
    const before = await gatewayMemory();
    const hash = createHash('sha256');
    const { req, response } = startUpload(UPLOAD);
    let answer: IncomingMessage;
    try {
      await write(req, PAUSE_AT, hash);
      await until(async () => (await temporaryBytes()) >= PAUSE_AT - 16 * MiB, 'the gateway never wrote the upload to a temporary file: it is not streamed to disk');
      const during = await gatewayMemory();
      expect(during - before).toBeLessThan(PAUSE_AT / 2);
      await write(req, UPLOAD - PAUSE_AT, hash);
      req.end();
      answer = await response;
    } catch (err) {
      req.destroy();
      throw err;
    }
    const body = JSON.parse(await new Promise<string>((resolve) => {
      let text = '';
      answer.on('data', (chunk: Buffer) => (text += chunk.toString()));
      answer.on('end', () => resolve(text));
    })) as { content_uri: string };
    expect(answer.statusCode).toBe(200);
    const mediaId = body.content_uri.split('/').pop()!;
    const store = await openInstanceStore(gateway);
    try {
      expect(await store.media.get(gateway.serverName, mediaId)).toMatchObject({ size: UPLOAD, sha256: hash.digest('base64url') });
    } finally {
      await store.close();
    }
    expect(await temporaryBytes()).toBe(0);
  });

  it('an upload cut off halfway leaves no file, temporary or not, and no record', async () => {
    const filesBefore = (await filesUnderMedia()).map((f) => f.name);
    const { req, response } = startUpload(16 * MiB);
    response.catch(() => undefined);
    await write(req, 8 * MiB, createHash('sha256'));
    await until(async () => (await temporaryBytes()) > 0, 'the gateway never started writing the upload');
    req.destroy();
    await until(async () => (await temporaryBytes()) === 0, 'the temporary file of the cut-off upload stayed');
    expect((await filesUnderMedia()).map((f) => f.name)).toEqual(filesBefore);
  });
});
