// Issue 19, idle memory: lru-cache allocates a cache's whole capacity when it is made, and PolicySigner made its
// decision cache (50,000) and rate windows (100,000) with the ingress module, ~4 MiB in every gateway although being
// a policy server is off by default. They are made at the first request signed now (signing: policy-server.spec.ts).
import { getHeapStatistics } from 'node:v8';
import type { KeyRing } from '@fedgate/federation-client';
import type { ServerIdentity, Store } from '@fedgate/platform';
import type { RoomAccess } from '../auth/room-access';
import type { ActivePolicy } from './active-policy';
import type { PolicyMetrics } from './policy-metrics';
import { PolicySigner } from './policy-signer';

describe('PolicySigner (issue 19: caches of an unused policy server allocated at start)', () => {
  it('allocates no cache before it signs: ten signers take well under the 23 MiB of heap ten sets of caches took (plus their typed arrays)', () => {
    const before = getHeapStatistics().used_heap_size;
    const signers = Array.from(
      { length: 10 },
      () => new PolicySigner({} as Store, {} as ServerIdentity, {} as KeyRing, {} as ActivePolicy, {} as PolicyMetrics, {} as RoomAccess),
    );
    const grown = getHeapStatistics().used_heap_size - before;
    expect(signers).toHaveLength(10);
    expect(grown).toBeLessThan(8 * 2 ** 20);
  });
});
