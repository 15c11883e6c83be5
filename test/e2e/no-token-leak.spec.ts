// Issue 18 "done when": no token appears in logs, metrics or audit. One embedded gateway (the real
// process, at debug level so every log line is written) with its bridge; traffic carries the tokens every
// way a client sends them — `?access_token=` (also on unknown routes, on the federation listener, with a
// wrong token), the Authorization header, the admin calls — and the AS pushes carry the hs_token. Then the
// process's whole output, its /metrics and its audit store are searched for the tokens.
import { request } from 'node:https';
import type { Store } from '@fedgate/store';
import { createTestCa, openInstanceStore, startFedgate, type FedgateInstance, type TestCertificateAuthority } from '@fedgate/testing';

jest.setTimeout(180_000);

describe('no token in logs, metrics or audit (issue 18)', () => {
  let ca: TestCertificateAuthority;
  let gw: FedgateInstance;
  let store: Store | undefined;
  const wrongToken = 'syt_wrong_token_guessed_by_someone_0123456789';

  beforeAll(async () => {
    ca = createTestCa();
    gw = await startFedgate({ shape: 'embedded', ca, name: 'leak', logLevel: 'debug' });
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    await gw?.destroy();
  });

  /** GET on the federation listener over TLS, trusting the test CA. */
  const federationGet = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const url = new URL(path, gw.federationUrl);
      const req = request(url, { ca: ca.certPem, method: 'GET' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });

  it('runs traffic with known tokens, then finds none of them in the output, /metrics or the audit store', async () => {
    const bridge = gw.bridge!;
    const asToken = bridge.registration.as_token;
    const hsToken = bridge.registration.hs_token;
    const cs = gw.clientServerUrl;
    const alice = bridge.virtualUserId('alice');
    const enc = encodeURIComponent;

    // Header and query tokens on the client-server listener, known routes and not.
    await bridge.registerVirtualUser(alice.slice(1, alice.indexOf(':')));
    const client = bridge.asUser(alice);
    const { room_id: roomId } = await client.createRoom({ name: 'leak test' });
    await client.sendMessage(roomId, { msgtype: 'm.text', body: 'hello' } as never);
    for (const path of [
      `/_matrix/client/v3/account/whoami?access_token=${asToken}`,
      `/_matrix/client/v3/joined_rooms?user_id=${enc(alice)}&access_token=${asToken}`,
      `/_matrix/client/v3/no/such/route?access_token=${asToken}&pad=${'x'.repeat(50)}`,
      `/_matrix/client/v3/account/whoami?access_token=${wrongToken}`,
      `/_matrix/media/v3/download/${gw.serverName}/nothing?access_token=${asToken}`,
      `/_synapse/admin/v2/rooms/delete_status/none?access_token=${asToken}`,
    ]) {
      await fetch(`${cs}${path}`);
    }
    await fetch(`${cs}/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/leak1?access_token=${asToken}&user_id=${enc(alice)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ msgtype: 'm.text', body: 'by query token' }),
    });
    await fetch(`${cs}/_matrix/client/v3/account/whoami`, { headers: { authorization: `Bearer ${wrongToken}` } });
    // The federation listener takes no access tokens, but a prober may still send them.
    await federationGet(`/_matrix/federation/v1/version?access_token=${asToken}`);
    await federationGet(`/_matrix/federation/v1/no/such/route?access_token=${asToken}`);
    // The message reached the bridge: the AS push (with the hs_token) happened.
    await bridge.waitForEvent((e) => e.room_id === roomId && e.content?.body === 'by query token', 30_000);

    const metrics = await (await fetch(`${cs}/metrics`)).text();
    store = await openInstanceStore(gw);
    const audit = JSON.stringify(await store.audit.query({ limit: 10_000 }));
    const logs = gw.logs();

    expect(logs).toContain('access_token=[REDACTED]');
    for (const [name, text] of [
      ['logs', logs],
      ['metrics', metrics],
      ['audit', audit],
    ] as const) {
      for (const token of [asToken, hsToken, wrongToken]) {
        expect({ where: name, leaks: text.includes(token) }).toEqual({ where: name, leaks: false });
      }
    }
    // Unmatched routes share one label (defect 1).
    expect(metrics).not.toContain('no/such/route');
  });
});
