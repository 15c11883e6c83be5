import { redactSecrets } from './redaction';

describe('redactSecrets (issue 18 defect 2)', () => {
  it.each([
    ['a query token', '/_matrix/client/v3/sync?access_token=syt_abc&user_id=@a:b', '/_matrix/client/v3/sync?access_token=[REDACTED]&user_id=@a:b'],
    ['a token first in a query', '/x?access_token=abc', '/x?access_token=[REDACTED]'],
    ['a percent-encoded parameter', 'url=/x%3Faccess_token%3Dabc', 'url=/x%3Faccess_token%3D[REDACTED]'],
    ['JSON fields', '{"as_token":"abc","hs_token":"d\\"e","x":1}', '{"as_token":"[REDACTED]","hs_token":"[REDACTED]","x":1}'],
    ['an Authorization header value', '{"authorization":"Bearer abc"}', '{"authorization":"[REDACTED]"}'],
    ['a bearer token in prose', 'sent Bearer abc.def to x', 'sent Bearer [REDACTED] to x'],
  ])('redacts %s', (_name, text, expected) => {
    expect(redactSecrets(text)).toBe(expected);
  });

  it('leaves text without secrets alone', () => {
    const text = '{"msg":"request","url":"/_matrix/client/v3/rooms/!a:b/send/m.room.message/1?user_id=@x:y"}';
    expect(redactSecrets(text)).toBe(text);
  });
});
