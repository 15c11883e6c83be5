import { Inject, Injectable, Module, Optional, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { FedgateConfig } from '@fedgate/config';
import { BUS, BUS_TOPOLOGY, elasticOwnershipFor, FEDERATION_CLIENT, METRICS_REGISTRY, SERVER_IDENTITY, STORE, type Bus, type BusTopology, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import { FEDGATE_CONFIG, SERVICE_LOGGER } from '@fedgate/service-kit';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { boundedLabel } from '@fedgate/telemetry';
import { EGRESS_SETTINGS, egressSettingsFrom, type EgressSettings } from './egress-settings';
import { FederationEgress } from './federation-egress';
import { registerQueueDepthGauges } from './queue-depth-metrics';

/** Runs FederationEgress for the life of the Nest app (bus consumers and senders, no HTTP). */
@Injectable()
export class FederationEgressWorker implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly egress: FederationEgress;

  constructor(
    @Inject(STORE) store: Store,
    @Inject(BUS) bus: Bus,
    @Inject(BUS_TOPOLOGY) topology: BusTopology,
    @Inject(SERVER_IDENTITY) identity: ServerIdentity,
    @Inject(FEDERATION_CLIENT) client: FederationHttpClient,
    @Inject(EGRESS_SETTINGS) settings: EgressSettings,
    @Inject(SERVICE_LOGGER) logger: Logger,
    @Optional() @Inject(METRICS_REGISTRY) registry: Registry | null,
    @Optional() @Inject(FEDGATE_CONFIG) config: FedgateConfig | null,
  ) {
    const ownFailures = registry ? ownFailuresCounter(registry) : null;
    const transactions = registry ? transactionsCounter(registry) : null;
    // Destinations are remote names: the first ones seen get a series each, later ones count as other.
    const destinationLabel = boundedLabel(MAX_DESTINATION_LABELS);
    this.egress = new FederationEgress({
      serverName: identity.serverName,
      store,
      bus,
      topology,
      client,
      settings,
      logger: logger.child({ component: 'federation-egress' }),
      onOwnFailure: () => ownFailures?.inc(),
      onTransaction: (destination, outcome) => transactions?.inc({ destination: destinationLabel(destination), outcome }),
      elastic: elasticOwnershipFor(config, store, 'federation-egress', logger.child({ component: 'federation-egress-ownership' })),
    });
    if (registry && !registry.getSingleMetric('fedgate_egress_queue_depth')) registerQueueDepthGauges(registry, this.egress);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.egress.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.egress.stop();
  }
}

const OWN_FAILURES = 'fedgate_egress_own_failures_total';

/** Send loops that failed on our side (store or bus); they never count against a destination. */
function ownFailuresCounter(registry: Registry): Counter {
  return (
    (registry.getSingleMetric(OWN_FAILURES) as Counter | undefined) ??
    new Counter({ name: OWN_FAILURES, help: 'Egress send loops that failed on our side (store or bus) and were retried without backing the destination off', registers: [registry] })
  );
}

const TRANSACTIONS = 'fedgate_egress_transactions_total';
/** Destinations with a series of their own in fedgate_egress_transactions_total. */
const MAX_DESTINATION_LABELS = 100;

/** Answers to outgoing transactions by destination: `retry` means the destination is backed off. */
function transactionsCounter(registry: Registry): Counter {
  return (
    (registry.getSingleMetric(TRANSACTIONS) as Counter | undefined) ??
    new Counter({ name: TRANSACTIONS, help: 'Outgoing transactions by destination and outcome (ok; retry: backing off; refused: given up)', labelNames: ['destination', 'outcome'], registers: [registry] })
  );
}

const settingsFromConfig = (overrides: Partial<EgressSettings>) => ({
  provide: EGRESS_SETTINGS,
  useFactory: (config: FedgateConfig) => egressSettingsFrom(config, overrides),
  inject: [FEDGATE_CONFIG],
});

/**
 * Federation egress: per-destination durable queues and transaction senders (bus consumers, no HTTP).
 * Needs STORE, BUS, BUS_TOPOLOGY, SERVER_IDENTITY, FEDERATION_CLIENT, FEDGATE_CONFIG and SERVICE_LOGGER.
 */
@Module({ providers: [settingsFromConfig({}), FederationEgressWorker], exports: [FederationEgressWorker] })
export class FederationEgressModule {
  /** With settings beyond config.egress (catch-up thresholds, replica share, limits). */
  static forRoot(overrides: Partial<EgressSettings>): DynamicModule {
    return { module: FederationEgressModule, providers: [settingsFromConfig(overrides), FederationEgressWorker], exports: [FederationEgressWorker] };
  }
}
