import { refusal, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';

const ALICE = '@alice:ingress.test';

const deviceKeys = (deviceId: string) => ({ user_id: ALICE, device_id: deviceId, algorithms: ['m.olm.v1.curve25519-aes-sha2'], keys: { [`ed25519:${deviceId}`]: `pub-${deviceId}` }, signatures: {} });

describe('federation: devices and keys of our users', () => {
  let h: IngressHarness;
  beforeAll(async () => {
    h = await startIngress();
    await h.store.deviceKeys.putDevice(ALICE, 'PHONE', 'Alice phone');
    await h.store.deviceKeys.setDeviceKeys(ALICE, 'PHONE', deviceKeys('PHONE'));
    await h.store.deviceKeys.putDevice(ALICE, 'NOKEYS');
    await h.store.deviceKeys.addOneTimeKeys(ALICE, 'PHONE', { 'signed_curve25519:OTK1': { key: 'one-time' } });
    await h.store.deviceKeys.setFallbackKeys(ALICE, 'PHONE', { 'signed_curve25519:FB1': { key: 'fallback', fallback: true } });
    await h.store.deviceKeys.setCrossSigningKey(ALICE, 'master', { user_id: ALICE, usage: ['master'], keys: { 'ed25519:M': 'M' } });
    await h.store.deviceKeys.setCrossSigningKey(ALICE, 'user_signing', { user_id: ALICE, usage: ['user_signing'], keys: { 'ed25519:U': 'U' } });
  }, 60_000);
  afterAll(() => h.close());

  it('GET /user/devices answers the real devices with keys, the stream id and the master key, without display names or the user-signing key', async () => {
    const { body } = await h.remote.client().getJson(h.identity.serverName, `/_matrix/federation/v1/user/devices/${encodeURIComponent(ALICE)}`);
    expect(body).toEqual({
      user_id: ALICE,
      stream_id: await h.store.deviceKeys.deviceListStreamId(ALICE),
      devices: [{ device_id: 'PHONE', keys: deviceKeys('PHONE') }],
      master_key: { user_id: ALICE, usage: ['master'], keys: { 'ed25519:M': 'M' } },
    });
    expect((body as { stream_id: number }).stream_id).toBeGreaterThan(0);
  });

  it('POST /user/keys/query answers device keys and the master key of our users', async () => {
    const { body } = await h.remote.client().postJson(h.identity.serverName, '/_matrix/federation/v1/user/keys/query', { device_keys: { [ALICE]: [] } });
    expect(body).toEqual({
      device_keys: { [ALICE]: { PHONE: deviceKeys('PHONE') } },
      master_keys: { [ALICE]: { user_id: ALICE, usage: ['master'], keys: { 'ed25519:M': 'M' } } },
      self_signing_keys: {},
    });
  });

  it('POST /user/keys/claim hands a one-time key out once, then the fallback key', async () => {
    const claim = () => h.remote.client().postJson(h.identity.serverName, '/_matrix/federation/v1/user/keys/claim', { one_time_keys: { [ALICE]: { PHONE: 'signed_curve25519', NOKEYS: 'signed_curve25519' } } });
    expect((await claim()).body).toEqual({ one_time_keys: { [ALICE]: { PHONE: { 'signed_curve25519:OTK1': { key: 'one-time' } } } } });
    expect((await claim()).body).toEqual({ one_time_keys: { [ALICE]: { PHONE: { 'signed_curve25519:FB1': { key: 'fallback', fallback: true } } } } });
  });

  it.each([
    ['GET /user/devices', (h: IngressHarness) => h.remote.client().getJson(h.identity.serverName, `/_matrix/federation/v1/user/devices/${encodeURIComponent(h.remote.user('mallory'))}`)],
    ['POST /user/keys/query', (h: IngressHarness) => h.remote.client().postJson(h.identity.serverName, '/_matrix/federation/v1/user/keys/query', { device_keys: { [ALICE]: [], [h.remote.user('mallory')]: [] } })],
    ['POST /user/keys/claim', (h: IngressHarness) => h.remote.client().postJson(h.identity.serverName, '/_matrix/federation/v1/user/keys/claim', { one_time_keys: { [h.other.user('olga')]: { D: 'signed_curve25519' } } })],
  ])('%s refuses users of another server: 400 M_INVALID_PARAM', async (_name, call) => {
    expect(await refusal(call(h))).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });
  });

  it('refuses malformed and oversized key requests', async () => {
    const post = (path: string, body: unknown) => h.remote.client().postJson(h.identity.serverName, `/_matrix/federation/v1/user/keys/${path}`, body);
    expect(await refusal(post('query', { device_keys: { [ALICE]: 'PHONE' } }))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
    expect(await refusal(post('claim', { one_time_keys: [] }))).toEqual({ status: 400, errcode: 'M_BAD_JSON' });
    const manyDevices = Array.from({ length: 10_001 }, (_, i) => `D${i}`);
    expect(await refusal(post('query', { device_keys: { [ALICE]: manyDevices } }))).toEqual({ status: 413, errcode: 'M_TOO_LARGE' });
  });
});
