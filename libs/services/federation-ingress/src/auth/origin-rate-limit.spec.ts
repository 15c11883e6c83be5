// Issue 11 defect 13 (second half), over HTTPS: a peer over its limits gets 429 M_LIMIT_EXCEEDED with
// retry_after_ms, audited as rate_limited and counted in fedgate_federation_rate_limited_total.
import { FederationHttpError } from '@fedgate/federation-client';
import { auditOnceRecorded, INGRESS_NAME, seedRoom, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { IngressMetrics } from '../send/ingress-metrics';
import { OriginRateLimiter } from './origin-rate-limiter';

describe('per-origin rate limits on the federation listener', () => {
  let h: IngressHarness;
  let eventId: string;
  beforeAll(async () => {
    h = await startIngress({ rateLimit: { windowMs: 60_000, sleepLimit: 1_000, sleepDelayMs: 0, rejectLimit: 0, concurrent: 1 } });
    eventId = (await seedRoom(h, '!limited:ingress.test', [h.remote.user('alice')])).eventIds.at(-1)!;
  }, 60_000);
  afterAll(() => h.close());

  it('queues a second concurrent request of one origin and refuses a third with 429, other origins unaffected', async () => {
    const path = `/_matrix/federation/v1/event/${encodeURIComponent(eventId)}`;
    const original = h.store.events.get.bind(h.store.events);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const firstInside = new Promise<void>((resolve) => (entered = resolve));
    let held = false;
    h.store.events.get = async (id) => {
      if (!held) {
        held = true;
        entered();
        await gate;
      }
      return original(id);
    };
    try {
      const first = h.remote.client().getJson(INGRESS_NAME, path);
      await firstInside;
      const second = h.remote.client().getJson(INGRESS_NAME, path);
      const limiter = h.app.get(OriginRateLimiter);
      while (limiter.waiting(h.remote.serverName) < 1) await new Promise((resolve) => setTimeout(resolve, 10));
      const third = await h.remote.client().getJson(INGRESS_NAME, path).then(
        () => undefined,
        (error: unknown) => error as FederationHttpError,
      );
      expect(third?.status).toBe(429);
      expect(third?.body).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: expect.any(Number) });
      release();
      await expect(first).resolves.toMatchObject({ status: 200 });
      await expect(second).resolves.toMatchObject({ status: 200 });
    } finally {
      h.store.events.get = original;
    }
    await auditOnceRecorded(h.store, (r) => r.status === 429 && r.reason === 'rate_limited' && r.origin === h.remote.serverName);
    const metrics = h.app.get(IngressMetrics);
    expect(await metrics.count(metrics.rateLimited, { limit: 'rejected' })).toBe(1);
    expect(await metrics.count(metrics.rateLimited, { limit: 'queued' })).toBe(1);
  });
});
