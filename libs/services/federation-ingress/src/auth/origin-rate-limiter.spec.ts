// Issue 11 defect 13 (second half): per-origin inbound rate limits in the spirit of Synapse's rc_federation.
import { OriginRateLimited, OriginRateLimiter, type RateLimitOutcome, type RateLimitSettings } from './origin-rate-limiter';

function limiter(settings: Partial<RateLimitSettings> = {}) {
  let now = 0;
  const sleeps: number[] = [];
  const outcomes: RateLimitOutcome[] = [];
  const l = new OriginRateLimiter(
    { windowMs: 1_000, sleepLimit: 10, sleepDelayMs: 500, rejectLimit: 50, concurrent: 3, ...settings },
    { now: () => now, sleep: async (ms) => void sleeps.push(ms), onLimit: (o) => outcomes.push(o), maxOrigins: 5 },
  );
  return { l, sleeps, outcomes, advance: (ms: number) => (now += ms) };
}

describe('per-origin rate limiter', () => {
  it('delays each request past sleepLimit in one window, and not in the next window', async () => {
    const { l, sleeps, outcomes, advance } = limiter({ sleepLimit: 3, concurrent: 100 });
    for (let i = 0; i < 5; i++) (await l.enter('a.test'))();
    expect(sleeps).toEqual([500, 500]);
    expect(outcomes).toEqual(['slowed', 'slowed']);
    advance(1_000);
    (await l.enter('a.test'))();
    expect(sleeps).toHaveLength(2);
    // Another origin has its own budget.
    for (let i = 0; i < 3; i++) (await l.enter('b.test'))();
    expect(sleeps).toHaveLength(2);
  });

  it('runs at most `concurrent` requests of an origin at once; the others wait for a slot, in order', async () => {
    const { l, outcomes } = limiter({ concurrent: 2 });
    const first = await l.enter('a.test');
    const second = await l.enter('a.test');
    const started: number[] = [];
    const third = l.enter('a.test').then((release) => (started.push(3), release));
    const fourth = l.enter('a.test').then((release) => (started.push(4), release));
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([]);
    expect(outcomes).toEqual(['queued', 'queued']);
    first();
    (await third)();
    expect(started).toEqual([3]);
    second();
    (await fourth)();
    expect(started).toEqual([3, 4]);
    // All slots are free again.
    const a = await l.enter('a.test');
    const b = await l.enter('a.test');
    a();
    b();
  });

  it('refuses with retry_after_ms once more than rejectLimit requests wait', async () => {
    const { l, outcomes } = limiter({ concurrent: 1, rejectLimit: 1 });
    const running = await l.enter('a.test');
    const queued = [l.enter('a.test'), l.enter('a.test')];
    await expect(l.enter('a.test')).rejects.toEqual(expect.objectContaining({ retryAfterMs: 100 }));
    await expect(l.enter('a.test')).rejects.toBeInstanceOf(OriginRateLimited);
    expect(outcomes.filter((o) => o === 'rejected')).toHaveLength(2);
    running();
    (await queued[0]!)();
    (await queued[1]!)();
  });

  it('keeps a bounded number of origins, forgetting idle ones', async () => {
    const { l } = limiter();
    for (let i = 0; i < 100; i++) (await l.enter(`forged${i}.test`))();
    expect(l.trackedOrigins).toBe(5);
  });
});
