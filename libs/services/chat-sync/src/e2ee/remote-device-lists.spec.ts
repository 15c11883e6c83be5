// Issue 13: other servers' device lists, cached and kept current by their EDUs, resynced on a gap and
// after a restart, and never moved by a lying origin.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { InboundEdu } from '@fedgate/bus';
import { generateSigningKey, signJson, type SigningKey } from '@fedgate/protocol';
import { openSqliteStore, type KeyQueryAnswer, type Store } from '@fedgate/store';
import { MAX_REMOTE_DEVICES_PER_USER } from './device-list-updates';
import { RemoteDeviceLists, RESYNC_QUIET_MS } from './remote-device-lists';

const BOB = '@bob:remote.test';
const signer = (key: SigningKey, keyId: string) => ({ keyId, sign: (m: Uint8Array) => key.sign(m) }) as never;
const phoneKey = generateSigningKey('PHONE');
const keysOf = (userId: string, deviceId: string, key: SigningKey = phoneKey) =>
  signJson({ user_id: userId, device_id: deviceId, algorithms: ['m.olm.v1.curve25519-aes-sha2'], keys: { [`ed25519:${deviceId}`]: key.publicKeyBase64 } }, userId, signer(key, `ed25519:${deviceId}`));
const update = (content: Record<string, unknown>, origin = 'remote.test'): InboundEdu => ({ origin, txnId: 't', eduType: 'm.device_list_update', receivedAt: 0, content: content as never });
const empty = (): KeyQueryAnswer => ({ device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {} });

describe('remote device lists (issue 13)', () => {
  let dir: string;
  let store: Store;
  let answers: Array<(path: string) => unknown>;
  let asked: string[];
  let lists: RemoteDeviceLists;
  const federation = {
    getJson: async (server: string, p: string) => {
      asked.push(`${server}${p}`);
      const next = answers.shift();
      if (!next) throw new Error('remote.test is down');
      return { status: 200, body: next(p) } as never;
    },
  };
  let clock = 1_000_000;
  const open = () => new RemoteDeviceLists(store, federation, 'gw.test', { isTracked: async (userId) => userId === BOB, now: () => clock });
  const devicesAnswer = (streamId: number, devices: Record<string, unknown>, extra: Record<string, unknown> = {}) => () => ({
    user_id: BOB,
    stream_id: streamId,
    devices: Object.entries(devices).map(([device_id, keys]) => ({ device_id, keys })),
    ...extra,
  });
  const audited = async () => (await store.audit.query({ limit: 1000 })).map((r) => r.reason);

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'remote-lists-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
    answers = [];
    asked = [];
    lists = open();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resyncs a tracked user on the first update, then applies updates in prev_id order without asking again', async () => {
    answers.push(devicesAnswer(5, { PHONE: keysOf(BOB, 'PHONE') }));
    await lists.handle(update({ user_id: BOB, device_id: 'PHONE', stream_id: 5, prev_id: [4], keys: keysOf(BOB, 'PHONE') }));
    expect(asked).toEqual([`remote.test/_matrix/federation/v1/user/devices/${encodeURIComponent(BOB)}`]);
    expect(await lists.fresh(BOB)).toMatchObject({ streamId: 5, devices: { PHONE: keysOf(BOB, 'PHONE') } });
    const laptopKey = generateSigningKey('LAPTOP');
    await lists.handle(update({ user_id: BOB, device_id: 'LAPTOP', stream_id: 6, prev_id: [5], keys: keysOf(BOB, 'LAPTOP', laptopKey) }));
    await lists.handle(update({ user_id: BOB, device_id: 'PHONE', stream_id: 7, prev_id: [6], deleted: true }));
    expect(asked).toHaveLength(1);
    expect(await lists.fresh(BOB)).toMatchObject({ streamId: 7, devices: { LAPTOP: keysOf(BOB, 'LAPTOP', laptopKey) } });
    const changes = await store.deviceLists.changesSince(0, 100);
    expect(changes.map((c) => c.userId)).toEqual([BOB, BOB, BOB]);
  });

  it('keeps a resync answer with null cross-signing keys, as Synapse answers for a user without them', async () => {
    answers.push(devicesAnswer(2, { PHONE: keysOf(BOB, 'PHONE') }, { master_key: null, self_signing_key: null }));
    expect(await lists.resync(BOB)).toMatchObject({ streamId: 2, masterKey: null, selfSigningKey: null, devices: { PHONE: keysOf(BOB, 'PHONE') } });
  });

  it('resyncs on a gap (a prev_id never seen)', async () => {
    answers.push(devicesAnswer(5, { PHONE: keysOf(BOB, 'PHONE') }));
    await lists.resync(BOB);
    answers.push(devicesAnswer(9, {}));
    await lists.handle(update({ user_id: BOB, device_id: 'PHONE', stream_id: 9, prev_id: [8], deleted: true }));
    expect(asked).toHaveLength(2);
    expect(await lists.fresh(BOB)).toMatchObject({ streamId: 9, devices: {} });
  });

  it('refuses with a reason an update for another server\'s user, a stream id going backwards, keys that do not verify, and too many devices', async () => {
    answers.push(devicesAnswer(5, { PHONE: keysOf(BOB, 'PHONE') }));
    await lists.resync(BOB);
    await lists.handle(update({ user_id: BOB, device_id: 'EVIL', stream_id: 6, prev_id: [5], keys: { ...keysOf(BOB, 'EVIL'), keys: { 'ed25519:EVIL': generateSigningKey('x').publicKeyBase64 } } }));
    await lists.handle(update({ user_id: BOB, device_id: 'OLD', stream_id: 4, prev_id: [3] }));
    await lists.handle(update({ user_id: BOB, device_id: 'EVIL', stream_id: 6, prev_id: [5] }, 'evil.test'));
    expect(await lists.fresh(BOB)).toMatchObject({ streamId: 5, devices: { PHONE: keysOf(BOB, 'PHONE') } });
    expect(await audited()).toEqual(expect.arrayContaining(['keys_do_not_verify', 'stream_id_not_newer', 'not_origin_user']));
    const many = Object.fromEntries(Array.from({ length: MAX_REMOTE_DEVICES_PER_USER + 1 }, (_, i) => [`D${i}`, undefined]));
    answers.push(devicesAnswer(7, many));
    await lists.handle(update({ user_id: BOB, device_id: 'D0', stream_id: 7, prev_id: [6] }));
    expect(await lists.fresh(BOB)).toBeNull();
    expect(await audited()).toContain('too_many_devices');
  });

  it('refuses a resync answer about another user or going backwards, leaving the list stale', async () => {
    answers.push(devicesAnswer(5, {}));
    await lists.resync(BOB);
    answers.push(() => ({ user_id: '@carol:remote.test', stream_id: 9, devices: [] }));
    expect(await lists.resync(BOB)).toBeNull();
    answers.push(devicesAnswer(3, {}));
    expect(await lists.resync(BOB)).toBeNull();
    expect(await audited()).toEqual(expect.arrayContaining(['resync_answer_for_another_user', 'stream_id_went_backwards']));
    expect(await store.deviceLists.remoteList(BOB)).toMatchObject({ stale: true, streamId: 5 });
  });

  it('asks a server sending gap after gap at most once per quiet period; the periodic resync still does', async () => {
    answers.push(devicesAnswer(5, {}));
    await lists.resync(BOB);
    for (let n = 0; n < 20; n++) await lists.handle(update({ user_id: BOB, device_id: 'X', stream_id: 100 + n, prev_id: [99 + n] }));
    expect(asked).toHaveLength(2);
    expect(await audited()).toContain('resync_pending');
    clock += RESYNC_QUIET_MS;
    answers.push(devicesAnswer(130, {}));
    await lists.handle(update({ user_id: BOB, device_id: 'X', stream_id: 131, prev_id: [130] }));
    expect(asked).toHaveLength(3);
    expect(await lists.fresh(BOB)).toMatchObject({ streamId: 130 });
  });

  it('stops serving the list of a user who no longer shares a room with ours (their server stops telling us)', async () => {
    let sharing = true;
    const tracking = new RemoteDeviceLists(store, federation, 'gw.test', { isTracked: async () => sharing, now: () => clock });
    answers.push(devicesAnswer(5, { PHONE: keysOf(BOB, 'PHONE') }));
    await tracking.resync(BOB);
    await tracking.untrackIfAlone(BOB);
    expect(await tracking.fresh(BOB)).not.toBeNull();
    sharing = false;
    await tracking.untrackIfAlone(BOB);
    expect(await tracking.fresh(BOB)).toBeNull();
  });

  it('keeps no list for a user sharing no room with ours', async () => {
    await lists.handle(update({ user_id: '@stranger:remote.test', device_id: 'X', stream_id: 1 }));
    expect(asked).toEqual([]);
    expect(await store.deviceLists.remoteList('@stranger:remote.test')).toBeNull();
    expect(await audited()).toContain('not_tracked');
  });

  it('a list left stale while the origin was down is resynced after a restart, and /keys/query is served from the cache when current', async () => {
    await lists.handle(update({ user_id: BOB, device_id: 'PHONE', stream_id: 5, prev_id: [4] }));
    expect(await store.deviceLists.remoteList(BOB)).toMatchObject({ stale: true });
    expect(await audited()).toContain('resync_failed');
    const into = empty();
    expect(await lists.answerFromCache({ [BOB]: [] }, into)).toEqual({ [BOB]: [] });

    const restarted = open();
    answers.push(devicesAnswer(6, { PHONE: keysOf(BOB, 'PHONE') }));
    expect(await restarted.resyncStale()).toBe(1);
    asked = [];
    const served = empty();
    expect(await restarted.answerFromCache({ [BOB]: ['PHONE', 'OTHER'] }, served)).toEqual({});
    expect(served.device_keys).toEqual({ [BOB]: { PHONE: keysOf(BOB, 'PHONE') } });
    expect(asked).toEqual([]);
  });

  it('applies m.signing_key_update only with a self-signing key the master key signed', async () => {
    answers.push(devicesAnswer(5, {}));
    await lists.resync(BOB);
    const crossKey = (usage: string, key: SigningKey, by?: SigningKey) => {
      const body = { user_id: BOB, usage: [usage], keys: { [`ed25519:${key.publicKeyBase64}`]: key.publicKeyBase64 } };
      return by ? signJson(body, BOB, signer(by, `ed25519:${by.publicKeyBase64}`)) : body;
    };
    const master = generateSigningKey('m');
    const selfSigning = generateSigningKey('s');
    const signingUpdate = (content: Record<string, unknown>): InboundEdu => ({ ...update(content), eduType: 'm.signing_key_update' });
    await lists.handle(signingUpdate({ user_id: BOB, master_key: crossKey('master', master), self_signing_key: crossKey('self_signing', selfSigning, generateSigningKey('other')) }));
    expect(await lists.fresh(BOB)).toMatchObject({ masterKey: null, selfSigningKey: null });
    expect(await audited()).toContain('self_signing_key_does_not_verify');
    await lists.handle(signingUpdate({ user_id: BOB, master_key: crossKey('master', master), self_signing_key: crossKey('self_signing', selfSigning, master) }));
    const into = empty();
    await lists.answerFromCache({ [BOB]: [] }, into);
    expect(into.master_keys[BOB]).toEqual(crossKey('master', master));
    expect(into.self_signing_keys[BOB]).toEqual(crossKey('self_signing', selfSigning, master));
  });
});
