// Issue 14: `/openid/userinfo` names the user an OpenID token was issued for, and nothing for a token that is
// unknown, expired, or whose user was deactivated since.
import { createHash } from 'node:crypto';
import { INGRESS_NAME, refusal, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';

const hashOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('base64url');

describe('federation openid/userinfo', () => {
  let h: IngressHarness;
  const userInfo = (token?: string) => h.remote.client().getJson<{ sub: string }>(INGRESS_NAME, '/_matrix/federation/v1/openid/userinfo', token === undefined ? {} : { query: { access_token: token } });

  beforeAll(async () => {
    h = await startIngress();
  }, 60_000);
  afterAll(() => h.close());

  it('answers the user of a live token', async () => {
    await h.store.openIdTokens.put({ tokenHash: hashOf('live-token'), userId: '@olive:ingress.test', expiresTs: Date.now() + 60_000 });
    expect((await userInfo('live-token')).body).toEqual({ sub: '@olive:ingress.test' });
  });

  it('refuses an unknown token, the stored hash itself, an expired token and a deactivated user’s token alike (401 M_UNKNOWN_TOKEN)', async () => {
    await h.store.openIdTokens.put({ tokenHash: hashOf('old-token'), userId: '@olive:ingress.test', expiresTs: Date.now() - 1 });
    await h.store.openIdTokens.put({ tokenHash: hashOf('gone-token'), userId: '@gone:ingress.test', expiresTs: Date.now() + 60_000 });
    await h.store.chatLifecycle.deactivate({ userId: '@gone:ingress.test', deactivatedTs: Date.now(), erased: false, appServiceId: 'bridge' });
    for (const token of ['never-issued', hashOf('live-token'), 'old-token', 'gone-token']) {
      expect(await refusal(userInfo(token))).toEqual({ status: 401, errcode: 'M_UNKNOWN_TOKEN' });
    }
    expect(await refusal(userInfo())).toEqual({ status: 400, errcode: 'M_MISSING_PARAM' });
  });
});
