import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '@fedgate/config';
import { generateSigningKey, verifyXMatrixRequest } from '@fedgate/protocol';
import { createLogger } from '@fedgate/service-kit';
import { addressAllowlist } from './address-allowlist';
import { buildPlatform, type Platform } from './build-platform';
import { BUS, BUS_TOPOLOGY, FEDERATION_CLIENT, KEY_RING, SERVER_IDENTITY, STORE } from './tokens';
import { xMatrixRequestSigner } from './x-matrix-signer';

describe('buildPlatform (embedded)', () => {
  let dir: string;
  let platform: Platform | undefined;
  beforeEach(async () => (dir = await mkdtemp(path.join(tmpdir(), 'fedgate-platform-'))));
  afterEach(async () => {
    await platform?.close();
    platform = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const embeddedConfig = (overrides: Record<string, unknown> = {}) =>
    loadConfig({ env: {}, argv: [], cwd: dir, overrides: { serverName: 'a.example:8448', dataDir: dir, ...overrides } });
  const signingKey = () => {
    const current = generateSigningKey();
    return { current, all: [current], created: true };
  };

  it('provides every platform token, with store and bus sharing the one SQLite file', async () => {
    const key = signingKey();
    platform = await buildPlatform({ config: embeddedConfig({ bus: { prefix: 'unit' } }), logger: createLogger('test', 'silent'), signingKey: key });
    const provided = new Map(platform.providers.map((p) => [(p as { provide: symbol }).provide, (p as { useValue: unknown }).useValue]));
    expect([...provided.keys()]).toEqual(expect.arrayContaining([STORE, BUS, BUS_TOPOLOGY, SERVER_IDENTITY, FEDERATION_CLIENT, KEY_RING]));
    expect(provided.get(SERVER_IDENTITY)).toEqual({ serverName: 'a.example:8448', signingKey: key.current, allKeys: key.all });
    expect(platform.topology.prefix).toBe('unit');

    const subject = platform.topology.roomLog.subjectFor('!room:a.example');
    const received: unknown[] = [];
    const done = new Promise<void>((resolve) => {
      void platform!.bus.consume(platform!.topology.consumers.egressRoomLog(platform!.topology.roomLog.partitionOf('!room:a.example')), (message) => {
        received.push(message.data);
        resolve();
      });
    });
    await platform.bus.publish(subject, { eventId: '$e' } as never, { messageId: '$e' });
    await done;
    expect(received).toEqual([{ eventId: '$e' }]);
  });

  it('answers our own keys from the identity without a request', async () => {
    const key = signingKey();
    platform = await buildPlatform({ config: embeddedConfig(), logger: createLogger('test', 'silent'), signingKey: key });
    const lookup = await platform.keyRing.prepare([{ serverName: 'a.example:8448', keyIds: [key.current.keyId] }]);
    expect(lookup('a.example:8448', key.current.keyId)?.publicKey).toEqual(key.current.publicKey);
  });
});

describe('xMatrixRequestSigner', () => {
  it('produces a header the receiving side verifies', async () => {
    const key = generateSigningKey();
    const sign = xMatrixRequestSigner({ serverName: 'a.example', signingKey: key, allKeys: [key] });
    const content = { pdus: [] };
    const authorization = await sign('PUT', '/_matrix/federation/v1/send/1', 'b.example', content);
    const verified = verifyXMatrixRequest({ method: 'PUT', uri: '/_matrix/federation/v1/send/1', content, authorization }, (server, keyId) =>
      server === 'a.example' && keyId === key.keyId ? key.verifyKey() : undefined, { serverName: 'b.example' });
    expect(verified).toEqual({ origin: 'a.example', keyId: key.keyId });
  });
});

describe('addressAllowlist', () => {
  it('allows only the listed addresses unless private addresses are allowed wholesale', () => {
    expect(addressAllowlist({ allowPrivateAddresses: false, addressAllowlist: ['127.0.0.0/8', '::1/128'] })).toEqual(['127.0.0.0/8', '::1/128']);
    expect(addressAllowlist({ allowPrivateAddresses: true, addressAllowlist: [] })).toEqual(['0.0.0.0/0', '::/0']);
  });
});
