// Issue 14: OpenID end to end on one whole embedded gateway. A bridge user's matrix-js-sdk client asks for a token
// (`getOpenIdToken()`); an "integration manager" (a plain HTTPS client trusting only the test CA) resolves it
// through the gateway's federation listener (`/_matrix/federation/v1/openid/userinfo`) as the spec tells it to:
// at `matrix_server_name`. An unknown, expired, other server's or deactivated user's token gets 401 M_UNKNOWN_TOKEN.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Agent, request } from 'undici';
import { createTestCa, startFedgate, type FedgateInstance, type TestCertificateAuthority } from '@fedgate/testing';

jest.setTimeout(60_000);

describe('OpenID: a bridge user’s token resolved by an integration manager over federation HTTPS (issue 14)', () => {
  let ca: TestCertificateAuthority;
  let gateway: FedgateInstance;
  let olga: string;
  let manager: Agent;

  beforeAll(async () => {
    ca = createTestCa();
    gateway = await startFedgate({ shape: 'embedded', ca, name: 'openid' });
    olga = await gateway.bridge!.registerVirtualUser('openidchat_olga');
    manager = new Agent({ connect: { ca: ca.certPem, servername: 'localhost' } });
  });
  afterAll(async () => {
    await manager?.close();
    await gateway?.destroy();
  });

  /** What an integration manager does with a token: ask the server it names, over HTTPS, who it is for. */
  const userInfo = async (serverName: string, token: string) => {
    const url = `https://${serverName}/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(token)}`;
    const response = await request(url, { dispatcher: manager });
    return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
  };
  const unknownToken = { status: 401, body: { errcode: 'M_UNKNOWN_TOKEN', error: expect.any(String) } };

  it('getOpenIdToken() gives a token the integration manager resolves to the user at matrix_server_name', async () => {
    const token = await gateway.bridge!.asUser(olga).getOpenIdToken();
    expect(token).toEqual({ access_token: expect.any(String), token_type: 'Bearer', matrix_server_name: gateway.serverName, expires_in: 3600 });
    expect(await userInfo(token.matrix_server_name, token.access_token)).toEqual({ status: 200, body: { sub: olga } });
  });

  it('an unknown token, a token of another server and the stored hash of a real token are refused alike', async () => {
    const real = await gateway.bridge!.asUser(olga).getOpenIdToken();
    const hash = createHash('sha256').update(real.access_token, 'utf8').digest('base64url');
    for (const token of ['never-issued', 'syt_b3RoZXI_token_another_server_issued', hash]) {
      expect(await userInfo(gateway.serverName, token)).toEqual(unknownToken);
    }
  });

  it('an expired token is refused', async () => {
    const token = await gateway.bridge!.asUser(olga).getOpenIdToken();
    // Age it in the gateway's own store (the tokens' lifetime is an hour).
    const db = new DatabaseSync(path.join(gateway.dataDir, 'fedgate.sqlite'));
    try {
      db.exec('PRAGMA busy_timeout = 5000');
      const hash = createHash('sha256').update(token.access_token, 'utf8').digest('base64url');
      expect(db.prepare('UPDATE store_openid_tokens SET expires_ts = ? WHERE token_hash = ?').run(Date.now() - 1, hash).changes).toBe(1);
    } finally {
      db.close();
    }
    expect(await userInfo(gateway.serverName, token.access_token)).toEqual(unknownToken);
  });

  it('the token of a user deactivated since is refused', async () => {
    const leaving = await gateway.bridge!.registerVirtualUser('openidchat_leo');
    const token = await gateway.bridge!.asUser(leaving).getOpenIdToken();
    expect(await userInfo(gateway.serverName, token.access_token)).toEqual({ status: 200, body: { sub: leaving } });
    const response = await fetch(`${gateway.clientServerUrl}/_matrix/client/v3/account/deactivate?user_id=${encodeURIComponent(leaving)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gateway.bridge!.registration.as_token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(200);
    expect(await userInfo(gateway.serverName, token.access_token)).toEqual(unknownToken);
  });
});
