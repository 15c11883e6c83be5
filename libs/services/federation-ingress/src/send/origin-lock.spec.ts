// Issue 11 defect 13 (first half): "one transaction at a time per origin" holds across ingress replicas.
import { FederationHttpError } from '@fedgate/federation-client';
import type { JsonObject } from '@fedgate/protocol';
import { auditOnceRecorded, INGRESS_NAME, startIngress, type IngressHarness } from '../__fixtures__/ingress-harness';
import { OriginLock, originLeaseName } from './origin-lock';

describe('per-origin transaction lock across replicas', () => {
  let h: IngressHarness;
  beforeAll(async () => {
    h = await startIngress();
  }, 60_000);
  afterAll(() => h.close());

  const send = (txnId: string) =>
    h.remote.client().putJson<any>(INGRESS_NAME, `/_matrix/federation/v1/send/${txnId}`, { origin: h.remote.serverName, origin_server_ts: Date.now(), pdus: [], edus: [] } as JsonObject);
  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => {
        throw new Error('expected a refusal');
      },
      (error: unknown) => (error instanceof FederationHttpError ? { status: error.status, body: error.body as any } : Promise.reject(error)),
    );

  it('refuses a transaction while another replica processes one from the same origin, and takes it once that one is done', async () => {
    const lease = originLeaseName(h.remote.serverName);
    expect(await h.store.leases.tryAcquire(lease, 'replica-2', 60_000)).toBe(true);
    const refused = await refusal(send('txn-while-other-replica'));
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: expect.any(Number) });
    await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-while-other-replica' && r.status === 429);
    // Another origin is not held up.
    await expect(h.other.client().putJson(INGRESS_NAME, '/_matrix/federation/v1/send/txn-other-origin', { origin: h.other.serverName, origin_server_ts: Date.now(), pdus: [], edus: [] } as JsonObject)).resolves.toMatchObject({ status: 200 });
    await h.store.leases.release(lease, 'replica-2');
    await expect(send('txn-while-other-replica')).resolves.toMatchObject({ status: 200 });
  });

  it('takes over the lease of a replica that died holding it once it has expired (the origin retries)', async () => {
    const lease = originLeaseName(h.remote.serverName);
    expect(await h.store.leases.tryAcquire(lease, 'dead-replica', 60_000, Date.now() - 61_000)).toBe(true);
    await expect(send('txn-after-crash')).resolves.toMatchObject({ status: 200 });
    // ...and gives it back after the transaction.
    expect(await h.store.leases.tryAcquire(lease, 'replica-3', 60_000)).toBe(true);
    await h.store.leases.release(lease, 'replica-3');
  });

  it('two locks on one store (two replicas) never hold one origin at once', async () => {
    const a = new OriginLock(h.store.leases, 60_000);
    const b = new OriginLock(h.store.leases, 60_000);
    const releaseA = await a.tryAcquire('busy.test');
    expect(releaseA).toBeDefined();
    expect(await b.tryAcquire('busy.test')).toBeUndefined();
    expect(await a.tryAcquire('busy.test')).toBeUndefined();
    await releaseA!();
    const releaseB = await b.tryAcquire('busy.test');
    expect(releaseB).toBeDefined();
    await releaseB!();
  });
});
