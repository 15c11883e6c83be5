// Issue 13, first half: devices and keys of chat-platform users through the AS API (MSC4190 devices,
// /keys/upload, /keys/query, /keys/claim) and over federation (/user/devices, /user/keys/query,
// /user/keys/claim), against a real gateway of either shape (embedded: SQLite store and bus; distributed:
// four processes on MongoDB-wire and JetStream). A fake remote server asks over federation.
import { generateSigningKey, signJson, type SigningKey } from '@fedgate/protocol';
import { createTestCa, FakeRemoteServer, startFedgate, type FedgateInstance, type FedgateShape } from '@fedgate/testing';

export function describeE2eeDeviceAndKeyScenarios(shape: FedgateShape): void {
  describe(`e2ee devices and keys of AS users (issue 13, ${shape})`, () => {
    let gw: FedgateInstance;
    let remote: FakeRemoteServer;
    let alice: string;
    let bob: string;
    const deviceKey: SigningKey = generateSigningKey('ALICEPHONE');
    const enc = encodeURIComponent;

    beforeAll(async () => {
      const ca = createTestCa();
      gw = await startFedgate({ shape, ca, name: 'e2ee' });
      remote = await FakeRemoteServer.start(ca);
      const bridge = gw.bridge!;
      alice = await bridge.registerVirtualUser(bridge.virtualUserId('alice').slice(1).split(':')[0]!);
      bob = await bridge.registerVirtualUser(bridge.virtualUserId('bob').slice(1).split(':')[0]!);
    }, 150_000);

    afterAll(async () => {
      await remote?.stop();
      await gw?.destroy();
    });

    /** A client-server call as the AS, asserting `userId` (and a device when given). */
    const as = async (method: string, path: string, userId: string, body?: unknown, deviceId?: string) => {
      const query = `user_id=${enc(userId)}${deviceId ? `&device_id=${enc(deviceId)}` : ''}`;
      const res = await fetch(`${gw.clientServerUrl}/_matrix/client/v3${path}${path.includes('?') ? '&' : '?'}${query}`, {
        method,
        headers: { authorization: `Bearer ${gw.bridge!.registration.as_token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json()) as any };
    };
    const federation = (method: 'GET' | 'POST', path: string, body?: unknown) => remote.send(gw.serverName, method, `/_matrix/federation/v1${path}`, body);
    const aliceDeviceKeys = () =>
      signJson(
        { user_id: alice, device_id: 'ALICEPHONE', algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'], keys: { 'ed25519:ALICEPHONE': deviceKey.publicKeyBase64, 'curve25519:ALICEPHONE': 'Y3VydmU' } },
        alice,
        deviceKey,
      );
    const signedKey = (key: string, extra: Record<string, unknown> = {}) => signJson({ key, ...extra }, alice, deviceKey);

    it('the AS creates a device for its user without a login (201), renames it (200) and lists it', async () => {
      expect(await as('PUT', '/devices/ALICEPHONE', alice, { display_name: 'Alice phone' })).toEqual({ status: 201, json: {} });
      expect(await as('PUT', '/devices/ALICEPHONE', alice, { display_name: 'Alice phone (work)' })).toEqual({ status: 200, json: {} });
      expect((await as('GET', '/devices', alice)).json).toEqual({ devices: [{ device_id: 'ALICEPHONE', display_name: 'Alice phone (work)' }] });
      expect(await as('GET', '/devices/ALICEPHONE', alice)).toEqual({ status: 200, json: { device_id: 'ALICEPHONE', display_name: 'Alice phone (work)' } });
      expect((await as('GET', '/devices/NOSUCH', alice)).json.errcode).toBe('M_NOT_FOUND');
      expect((await as('GET', '/devices', bob)).json).toEqual({ devices: [] });
    });

    it('uploads self-signed device keys, signed one-time keys and a fallback key, answering the counts', async () => {
      const res = await as(
        'POST',
        '/keys/upload',
        alice,
        {
          device_keys: aliceDeviceKeys(),
          one_time_keys: { 'signed_curve25519:AAAAAQ': signedKey('otk-1'), 'signed_curve25519:AAAAAg': signedKey('otk-2') },
          fallback_keys: { 'signed_curve25519:AAAAAw': signedKey('fallback-1', { fallback: true }) },
        },
        'ALICEPHONE',
      );
      expect(res).toEqual({ status: 200, json: { one_time_key_counts: { signed_curve25519: 2 } } });
    });

    it('refuses device keys with a bad signature, an oversized upload, a reused one-time key ID and a device never created', async () => {
      const forged = signJson({ ...aliceDeviceKeys(), signatures: undefined }, alice, generateSigningKey('ALICEPHONE'));
      expect(await as('POST', '/keys/upload', alice, { device_keys: forged }, 'ALICEPHONE')).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      const badOneTime = { 'signed_curve25519:AAAABA': signJson({ key: 'otk-x' }, alice, generateSigningKey('ALICEPHONE')) };
      expect(await as('POST', '/keys/upload', alice, { one_time_keys: badOneTime }, 'ALICEPHONE')).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      const tooMany = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`signed_curve25519:K${i}`, signedKey(`k${i}`)]));
      expect(await as('POST', '/keys/upload', alice, { one_time_keys: tooMany }, 'ALICEPHONE')).toMatchObject({ status: 413, json: { errcode: 'M_TOO_LARGE' } });
      expect(await as('POST', '/keys/upload', alice, { one_time_keys: { 'signed_curve25519:AAAAAQ': signedKey('another') } }, 'ALICEPHONE')).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect(await as('POST', '/keys/upload', alice, { one_time_keys: {} }, 'NEVERMADE')).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect(await as('POST', '/keys/upload', alice, { one_time_keys: {} })).toMatchObject({ status: 400, json: { errcode: 'M_MISSING_PARAM' } });
      // Nothing refused was kept.
      expect((await as('POST', '/keys/upload', alice, {}, 'ALICEPHONE')).json).toEqual({ one_time_key_counts: { signed_curve25519: 2 } });
    });

    it('another local user queries the device keys (with the display name), a remote user is asked of its server; a remote server queries them without names', async () => {
      const local = await as('POST', '/keys/query', bob, { device_keys: { [alice]: [], [`@someone:${remote.serverName}`]: [] } });
      expect(local.status).toBe(200);
      expect(local.json.device_keys[alice].ALICEPHONE).toEqual({ ...aliceDeviceKeys(), unsigned: { device_display_name: 'Alice phone (work)' } });
      // A user of another server is asked of that server (which knows no keys here).
      expect(local.json.device_keys[`@someone:${remote.serverName}`]).toEqual({});
      expect(local.json.failures).toEqual({});
      expect(remote.received.some((r) => r.method === 'POST' && r.url === '/_matrix/federation/v1/user/keys/query')).toBe(true);
      const viaFederation = await federation('POST', '/user/keys/query', { device_keys: { [alice]: ['ALICEPHONE'] } });
      expect(viaFederation).toEqual({ status: 200, json: { device_keys: { [alice]: { ALICEPHONE: aliceDeviceKeys() } }, master_keys: {}, self_signing_keys: {} } });
    });

    it('hands each one-time key out once (client-server and federation alike), then the fallback key', async () => {
      const claimLocal = async () => (await as('POST', '/keys/claim', bob, { one_time_keys: { [alice]: { ALICEPHONE: 'signed_curve25519' } } })).json.one_time_keys[alice].ALICEPHONE;
      const claimRemote = async () => (await federation('POST', '/user/keys/claim', { one_time_keys: { [alice]: { ALICEPHONE: 'signed_curve25519' } } })).json.one_time_keys[alice].ALICEPHONE;
      const first = await claimLocal();
      const second = await claimRemote();
      expect(Object.keys({ ...first, ...second }).sort()).toEqual(['signed_curve25519:AAAAAQ', 'signed_curve25519:AAAAAg']);
      expect(await claimLocal()).toEqual({ 'signed_curve25519:AAAAAw': signedKey('fallback-1', { fallback: true }) });
      expect(await claimRemote()).toEqual({ 'signed_curve25519:AAAAAw': signedKey('fallback-1', { fallback: true }) });
      expect((await as('POST', '/keys/upload', alice, {}, 'ALICEPHONE')).json).toEqual({ one_time_key_counts: { signed_curve25519: 0 } });
    });

    it('answers /user/devices with the real device and a stream id that moves on each device change', async () => {
      const before = await federation('GET', `/user/devices/${enc(alice)}`);
      expect(before.status).toBe(200);
      expect(before.json).toMatchObject({ user_id: alice, devices: [{ device_id: 'ALICEPHONE', keys: aliceDeviceKeys() }] });
      expect(before.json.stream_id).toBeGreaterThan(0);
      expect(await as('DELETE', '/devices/ALICEPHONE', alice)).toEqual({ status: 200, json: {} });
      expect(await as('DELETE', '/devices/ALICEPHONE', alice)).toEqual({ status: 200, json: {} });
      const after = await federation('GET', `/user/devices/${enc(alice)}`);
      expect(after.json).toEqual({ user_id: alice, stream_id: before.json.stream_id + 1, devices: [] });
      expect((await as('GET', '/devices', alice)).json).toEqual({ devices: [] });
    });

    it('refuses federation key requests about users of another server', async () => {
      const stranger = `@mallory:${remote.serverName}`;
      expect(await federation('GET', `/user/devices/${enc(stranger)}`)).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect(await federation('POST', '/user/keys/query', { device_keys: { [stranger]: [] } })).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect(await federation('POST', '/user/keys/claim', { one_time_keys: { [stranger]: { D: 'signed_curve25519' } } })).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    });

    it('uploads cross-signing keys without interactive auth, refusing a self-signing key the master key did not sign; others see the public parts', async () => {
      const master = generateSigningKey('master');
      const selfSigning = generateSigningKey('selfsigning');
      const userSigning = generateSigningKey('usersigning');
      const keyOf = (key: SigningKey, usage: string) => ({ user_id: bob, usage: [usage], keys: { [`ed25519:${key.publicKeyBase64}`]: key.publicKeyBase64 } });
      const signedBy = (object: Record<string, unknown>, signer: SigningKey) =>
        signJson(object, bob, { keyId: `ed25519:${master.publicKeyBase64}`, sign: (m: Uint8Array) => signer.sign(m) } as unknown as SigningKey);
      const forged = signedBy(keyOf(selfSigning, 'self_signing'), generateSigningKey('evil'));
      expect(await as('POST', '/keys/device_signing/upload', bob, { master_key: keyOf(master, 'master'), self_signing_key: forged })).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect((await as('POST', '/keys/query', alice, { device_keys: { [bob]: [] } })).json.master_keys).toEqual({});

      const upload = { master_key: keyOf(master, 'master'), self_signing_key: signedBy(keyOf(selfSigning, 'self_signing'), master), user_signing_key: signedBy(keyOf(userSigning, 'user_signing'), master) };
      expect(await as('POST', '/keys/device_signing/upload', bob, upload)).toEqual({ status: 200, json: {} });
      const byAlice = (await as('POST', '/keys/query', alice, { device_keys: { [bob]: [] } })).json;
      expect(byAlice).toMatchObject({ master_keys: { [bob]: upload.master_key }, self_signing_keys: { [bob]: upload.self_signing_key }, user_signing_keys: {} });
      expect((await as('POST', '/keys/query', bob, { device_keys: { [bob]: [] } })).json.user_signing_keys).toEqual({ [bob]: upload.user_signing_key });
      const viaFederation = await federation('GET', `/user/devices/${enc(bob)}`);
      expect(viaFederation.json).toEqual({ user_id: bob, stream_id: 3, devices: [], master_key: upload.master_key, self_signing_key: upload.self_signing_key });
    });

    it('delivers /sendToDevice to the AS for local devices (once per txnId) and to other servers as m.direct_to_device', async () => {
      const bridge = gw.bridge!;
      expect((await as('PUT', '/devices/BOBPHONE', bob, {})).status).toBe(201);
      const send = (txnId: string, messages: unknown) => as('PUT', `/sendToDevice/m.room_key_request/${txnId}`, alice, { messages });
      const stranger = `@someone:${remote.serverName}`;
      expect(await send('td1', { [bob]: { BOBPHONE: { n: 1 } }, [stranger]: { '*': { n: 1 } } })).toEqual({ status: 200, json: {} });
      expect(await send('td1', { [bob]: { BOBPHONE: { n: 1 } }, [stranger]: { '*': { n: 1 } } })).toEqual({ status: 200, json: {} });
      expect(await send('td2', { [bob]: { '*': { n: 2 }, NOSUCHDEVICE: { n: 3 } } })).toEqual({ status: 200, json: {} });
      const second = await bridge.received.waitForToDevice((m) => m.content?.n === 2, 30_000);
      expect(second).toEqual({ type: 'm.room_key_request', sender: alice, content: { n: 2 }, to_user_id: bob, to_device_id: 'BOBPHONE' });
      await bridge.received.waitForToDevice((m) => m.content?.n === 1, 30_000);
      const toDevice = bridge.received.all().filter((r) => r.kind === 'to_device').map((r) => r.event.content.n);
      expect(toDevice.filter((n) => n === 1)).toHaveLength(1);
      expect(toDevice).not.toContain(3);

      const deadline = Date.now() + 30_000;
      let edu: any;
      while (!edu && Date.now() < deadline) {
        for (const r of remote.received.filter((q) => q.method === 'PUT' && q.url.startsWith('/_matrix/federation/v1/send/'))) {
          edu ??= (JSON.parse(r.body).edus ?? []).find((e: any) => e.edu_type === 'm.direct_to_device');
        }
        if (!edu) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(edu?.content).toEqual({ sender: alice, type: 'm.room_key_request', message_id: expect.any(String), messages: { [stranger]: { '*': { n: 1 } } } });
      expect(await send('td3', { [bob]: 'not an object' })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    });
  });
}
