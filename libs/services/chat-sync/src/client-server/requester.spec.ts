import type { FastifyRequest } from 'fastify';
import { MatrixError } from '@fedgate/service-kit';
import { ApplicationServiceRegistry } from '../registration';
import { resolveRequester } from './requester';
import { fakeRegistration } from '../registration/fake-registration';

const registration = (id: string, prefix: string) =>
  fakeRegistration(id, null, { senderLocalpart: `${prefix}_bot`, namespaces: { users: [{ exclusive: true, regex: `@${prefix}_.*:gw\\.test` }], aliases: [], rooms: [] } });
const registry = new ApplicationServiceRegistry([registration('rc', 'rc'), registration('other', 'xx')], 'gw.test');
const request = (headers: Record<string, string>, query: Record<string, unknown> = {}) => ({ headers, query }) as unknown as FastifyRequest;
const failure = (r: FastifyRequest) => {
  try {
    resolveRequester(registry, r);
  } catch (err) {
    return [(err as MatrixError).status, (err as MatrixError).errcode];
  }
  return null;
};

describe('resolveRequester', () => {
  it('acts as the AS sender without user_id, and as a namespaced user with it', () => {
    expect(resolveRequester(registry, request({ authorization: 'Bearer as-rc' })).userId).toBe('@rc_bot:gw.test');
    expect(resolveRequester(registry, request({}, { access_token: 'as-rc', user_id: '@rc_a:gw.test' })).userId).toBe('@rc_a:gw.test');
  });

  it.each([
    ['no token', request({}), [401, 'M_MISSING_TOKEN']],
    ['an unknown token', request({ authorization: 'Bearer nope' }), [401, 'M_UNKNOWN_TOKEN']],
    ['another AS’s exclusive user', request({ authorization: 'Bearer as-rc' }, { user_id: '@xx_a:gw.test' }), [403, 'M_EXCLUSIVE']],
    ['a user in no namespace', request({ authorization: 'Bearer as-rc' }, { user_id: '@bob:gw.test' }), [403, 'M_FORBIDDEN']],
    ['a remote user', request({ authorization: 'Bearer as-rc' }, { user_id: '@rc_a:remote.test' }), [403, 'M_FORBIDDEN']],
    ['a malformed user ID', request({ authorization: 'Bearer as-rc' }, { user_id: 'rc_a' }), [400, 'M_INVALID_PARAM']],
  ])('refuses %s', (_name, r, expected) => {
    expect(failure(r)).toEqual(expected);
  });
});
