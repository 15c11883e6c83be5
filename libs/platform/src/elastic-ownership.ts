import type { FedgateConfig } from '@fedgate/config';
import type { Store } from '@fedgate/store';
import { serviceInstanceId, setOwnedPartitions } from '@fedgate/telemetry';
import type { ElasticOwnership, OwnershipLogger } from './partition-ownership';

export type PartitionedStage = 'state-resolver' | 'federation-egress' | 'chat-sync';

/** The elastic ownership settings of a stage when `replicas.ownership` is `leases`; undefined for static shares. */
export function elasticOwnershipFor(config: FedgateConfig | null | undefined, store: Store, stage: PartitionedStage, logger: OwnershipLogger): ElasticOwnership | undefined {
  if (config?.replicas?.ownership !== 'leases') return undefined;
  return {
    leases: store.leases,
    // The bus prefix keeps deployments sharing one database apart, as it does on the bus.
    scope: `${config.bus.prefix}/${stage}`,
    instanceId: serviceInstanceId(),
    ttlMs: config.replicas.leaseTtlMs,
    logger,
    onChange: (owned) => setOwnedPartitions(stage, owned),
  };
}
