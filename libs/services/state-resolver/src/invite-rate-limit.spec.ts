// The invite budget per origin, and the bound on origins remembered (an LRU cache: the least recently seen
// origin is forgotten first and starts again with a full bucket).
import { InviteRateLimit } from './invite-rate-limit';

describe('InviteRateLimit', () => {
  it('gives each origin its burst, then refills at perSecond', () => {
    let now = 0;
    const limit = new InviteRateLimit({ burst: 2, perSecond: 1, maxOrigins: 10, now: () => now });
    expect([limit.take('a.test'), limit.take('a.test'), limit.take('a.test')]).toEqual([undefined, undefined, 1000]);
    now = 1000;
    expect(limit.take('a.test')).toBeUndefined();
  });

  it('remembers at most maxOrigins: the least recently seen origin is forgotten first', () => {
    const limit = new InviteRateLimit({ burst: 1, perSecond: 0.001, maxOrigins: 2, now: () => 0 });
    limit.take('a.test');
    limit.take('b.test');
    expect(limit.take('a.test')).toBeGreaterThan(0); // a seen again: now the most recent
    limit.take('c.test'); // b, least recently seen, is forgotten
    expect(limit.take('b.test')).toBeUndefined();
    expect(limit.take('c.test')).toBeGreaterThan(0);
  });
});
