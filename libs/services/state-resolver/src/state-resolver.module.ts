import { Inject, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import {
  BUS,
  BUS_TOPOLOGY,
  FEDERATION_CLIENT,
  KEY_RING,
  METRICS_REGISTRY,
  SERVER_IDENTITY,
  STORE,
  elasticOwnershipFor,
  type Bus,
  type BusTopology,
  type FederationHttpClient,
  type KeyRing,
  type ServerIdentity,
  type Store,
} from '@fedgate/platform';
import type { FedgateConfig } from '@fedgate/config';
import { FEDGATE_CONFIG, SERVICE_LOGGER } from '@fedgate/service-kit';
import { setOwnedPartitions } from '@fedgate/telemetry';
import pino, { type Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { RoomReader } from './room-reader';
import { StateResolver } from './state-resolver';

export const STATE_RESOLVER = Symbol.for('fedgate.state-resolver');

const silentLogger = pino({ level: 'silent' });

/** State resolver: per-room-partition consumers and the room commands that authorize, resolve and persist events (no HTTP). */
@Module({
  providers: [
    {
      provide: STATE_RESOLVER,
      inject: [STORE, BUS, BUS_TOPOLOGY, SERVER_IDENTITY, FEDERATION_CLIENT, KEY_RING, { token: FEDGATE_CONFIG, optional: true }, { token: SERVICE_LOGGER, optional: true }, { token: METRICS_REGISTRY, optional: true }],
      useFactory: (
        store: Store,
        bus: Bus,
        topology: BusTopology,
        identity: ServerIdentity,
        federation: FederationHttpClient,
        keyRing: KeyRing,
        config: FedgateConfig | undefined,
        logger: Logger | undefined,
        registry: Registry | null | undefined,
      ) => {
        const fenced = registry ? commitsFencedCounter(registry) : undefined;
        const declined = registry ? commandsDeclinedCounter(registry) : undefined;
        return new StateResolver({
          store,
          bus,
          topology,
          identity,
          federation,
          keyRing,
          replica: config?.replicas.stateResolver,
          elastic: elasticOwnershipFor(config, store, 'state-resolver', (logger ?? silentLogger).child({ component: 'state-resolver-ownership' })),
          // One process over its own SQLite file: nothing else writes its rooms.
          soleWriter: config?.mode === 'embedded',
          parking: config ? { budgetMs: config.partitions.parkedBudgetMs } : undefined,
          metrics: registry,
          onResyncFailure: (err) => (logger ?? silentLogger).warn({ err, roomId: (err as { roomId?: string }).roomId }, 'partial-state resync failed; retried with backoff'),
          onResynced: (outcome) =>
            (logger ?? silentLogger)[outcome.rejected.length > 0 ? 'warn' : 'info'](
              { roomId: outcome.roomId, from: outcome.server, members: outcome.members, rechecked: outcome.rechecked, rejected: outcome.rejected },
              'partial-state room resynced: full state in',
            ),
          onCommitFenced: () => fenced?.inc(),
          onCommandDeclined: (partition) => declined?.inc({ partition: String(partition) }),
        });
      },
    },
    { provide: RoomReader, inject: [STORE], useFactory: (store: Store) => new RoomReader(store) },
  ],
  exports: [STATE_RESOLVER, RoomReader],
})
export class StateResolverModule implements OnModuleInit, OnApplicationShutdown {
  constructor(@Inject(STATE_RESOLVER) private readonly resolver: StateResolver) {}

  async onModuleInit(): Promise<void> {
    await this.resolver.start();
    setOwnedPartitions('state-resolver', this.resolver.ownedPartitions());
  }

  async onApplicationShutdown(): Promise<void> {
    await this.resolver.stop();
  }
}

const COMMITS_FENCED = 'fedgate_commits_fenced_total';

/** Commits the store refused because this replica's partition lease was lost (a stall past its expiry). */
function commitsFencedCounter(registry: Registry): Counter {
  return (
    (registry.getSingleMetric(COMMITS_FENCED) as Counter | undefined) ??
    new Counter({ name: COMMITS_FENCED, help: 'Commits refused because the partition lease they were made under was lost (elastic ownership fencing)', registers: [registry] })
  );
}

const COMMANDS_DECLINED = 'fedgate_state_resolver_commands_declined_total';

/** Room commands received for a partition whose lease this replica does not hold (left to the owner, unanswered here). */
function commandsDeclinedCounter(registry: Registry): Counter<'partition'> {
  return (
    (registry.getSingleMetric(COMMANDS_DECLINED) as Counter<'partition'> | undefined) ??
    new Counter({
      name: COMMANDS_DECLINED,
      help: 'Room commands received for a partition this replica does not own (lease lost or moving): left unanswered for the owner',
      labelNames: ['partition'],
      registers: [registry],
    })
  );
}
