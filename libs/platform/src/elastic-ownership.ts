import type { FedgateConfig } from '@fedgate/config';
import type { Store } from '@fedgate/store';
import { registerReadinessCheck, serviceInstanceId, setOwnedPartitions } from '@fedgate/telemetry';
import type { ElasticOwnership, OwnershipLogger } from './partition-ownership';

export type PartitionedStage = 'state-resolver' | 'federation-egress' | 'chat-sync';

/** The elastic ownership settings of a stage when `replicas.ownership` is `leases`; undefined for static shares. */
export function elasticOwnershipFor(config: FedgateConfig | null | undefined, store: Store, stage: PartitionedStage, logger: OwnershipLogger): ElasticOwnership | undefined {
  if (config?.replicas?.ownership !== 'leases') return undefined;
  const scope = `${config.bus.prefix}/${stage}`;
  const instanceId = serviceInstanceId();
  // Not ready until this replica has joined its stage (its membership lease is live), nor while that lease
  // has lapsed (a store outage longer than the lease: its partitions are being taken over).
  registerReadinessCheck(`ownership ${stage}`, async () => {
    const live = await store.leases.live(`${scope}/`, Date.now());
    if (!live.some((lease) => lease.holder === instanceId && lease.name.includes('/members/'))) throw new Error(`no live membership lease in ${scope}: partitions not acquired`);
  });
  return {
    leases: store.leases,
    // The bus prefix keeps deployments sharing one database apart, as it does on the bus.
    scope,
    instanceId,
    ttlMs: config.replicas.leaseTtlMs,
    logger,
    onChange: (owned) => setOwnedPartitions(stage, owned),
  };
}
