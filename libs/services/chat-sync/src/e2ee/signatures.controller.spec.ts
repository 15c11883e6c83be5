// Issue 13: /keys/signatures/upload keeps only signatures that verify, on the published key unchanged.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateSigningKey, signJson, type SigningKey } from '@fedgate/protocol';
import { openSqliteStore, type Store } from '@fedgate/store';
import { SignaturesController } from './signatures.controller';

const ALICE = '@chat_alice:gw.test';
const BOB = '@chat_bob:gw.test';
const signer = (key: SigningKey, keyId: string) => ({ keyId, sign: (m: Uint8Array) => key.sign(m) }) as never;
const crossKey = (userId: string, usage: string, key: SigningKey) => ({ user_id: userId, usage: [usage], keys: { [`ed25519:${key.publicKeyBase64}`]: key.publicKeyBase64 } });
const byKey = (object: Record<string, unknown>, userId: string, key: SigningKey, keyId = `ed25519:${key.publicKeyBase64}`) => signJson(object, userId, signer(key, keyId));

describe('/keys/signatures/upload (issue 13)', () => {
  let dir: string;
  let store: Store;
  let controller: SignaturesController;
  let drains: number;
  const device = generateSigningKey('PHONE');
  const master = generateSigningKey('m');
  const selfSigning = generateSigningKey('s');
  const userSigning = generateSigningKey('u');
  const bobMaster = generateSigningKey('bm');
  const phoneKeys = () => byKey({ user_id: ALICE, device_id: 'PHONE', algorithms: [], keys: { 'ed25519:PHONE': device.publicKeyBase64 } }, ALICE, device, 'ed25519:PHONE');

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'signatures-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
    drains = 0;
    const outbox = { drainLogged: async () => void drains++ };
    const none = { fresh: async () => null };
    controller = new SignaturesController(store, { serverName: 'gw.test' } as never, outbox as never, none as never, {} as never);
    await store.deviceKeys.putDevice(ALICE, 'PHONE');
    await store.deviceKeys.setDeviceKeys(ALICE, 'PHONE', phoneKeys());
    await store.deviceKeys.setCrossSigningKey(ALICE, 'master', crossKey(ALICE, 'master', master));
    await store.deviceKeys.setCrossSigningKey(ALICE, 'self_signing', byKey(crossKey(ALICE, 'self_signing', selfSigning), ALICE, master));
    await store.deviceKeys.setCrossSigningKey(ALICE, 'user_signing', byKey(crossKey(ALICE, 'user_signing', userSigning), ALICE, master));
    await store.deviceKeys.setCrossSigningKey(BOB, 'master', crossKey(BOB, 'master', bobMaster));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const upload = (body: unknown) => controller.upload({ userId: ALICE } as never, body);

  it('adds a device signature by the self-signing key and a master key signature by a device; the device list moves', async () => {
    const signedDevice = byKey(phoneKeys(), ALICE, selfSigning);
    const signedMaster = byKey(crossKey(ALICE, 'master', master), ALICE, device, 'ed25519:PHONE');
    expect(await upload({ [ALICE]: { PHONE: signedDevice, [master.publicKeyBase64]: signedMaster } })).toEqual({ failures: {} });
    expect((await store.deviceKeys.getDevice(ALICE, 'PHONE'))!.keys!.signatures).toEqual((signedDevice as Record<string, unknown>).signatures);
    expect((await store.deviceKeys.crossSigningKeys(ALICE)).master!.signatures).toEqual({ [ALICE]: { 'ed25519:PHONE': expect.any(String) } });
    expect(drains).toBe(1);
  });

  it('refuses a signature by another key, a changed object and an unknown device, keeping nothing of them', async () => {
    const forged = byKey(phoneKeys(), ALICE, generateSigningKey('x'), `ed25519:${selfSigning.publicKeyBase64}`);
    const changed = byKey({ ...phoneKeys(), algorithms: ['evil'] }, ALICE, selfSigning);
    const answer = await upload({ [ALICE]: { PHONE: forged, NOSUCH: byKey({ device_id: 'NOSUCH' }, ALICE, selfSigning) } });
    expect(answer.failures[ALICE]).toEqual({ PHONE: { errcode: 'M_INVALID_SIGNATURE', error: expect.stringMatching(/does not verify/) }, NOSUCH: { errcode: 'M_NOT_FOUND', error: expect.any(String) } });
    expect((await upload({ [ALICE]: { PHONE: changed } })).failures[ALICE]!.PHONE!.error).toMatch(/differs from the published key/);
    expect((await store.deviceKeys.getDevice(ALICE, 'PHONE'))!.keys).toEqual(phoneKeys());
    expect(drains).toBe(0);
  });

  it('keeps a signature of another user\'s master key by the user-signing key, for the signer alone', async () => {
    const signed = byKey(crossKey(BOB, 'master', bobMaster), ALICE, userSigning);
    expect(await upload({ [BOB]: { [bobMaster.publicKeyBase64]: signed } })).toEqual({ failures: {} });
    expect(await store.deviceKeys.userSigningSignatures(ALICE, BOB)).toEqual({ [`ed25519:${userSigning.publicKeyBase64}`]: expect.any(String) });
    expect((await store.deviceKeys.crossSigningKeys(BOB)).master!.signatures).toBeUndefined();
    const byWrongKey = byKey(crossKey(BOB, 'master', bobMaster), ALICE, selfSigning, `ed25519:${userSigning.publicKeyBase64}`);
    expect((await upload({ [BOB]: { [bobMaster.publicKeyBase64]: byWrongKey } })).failures[BOB]).toBeDefined();
    expect((await upload({ [BOB]: { NOTTHEKEY: signed } })).failures[BOB]!.NOTTHEKEY!.errcode).toBe('M_NOT_FOUND');
  });
});
