// chat-sync's bus side: room log and EDU consumers fan out to per-AS subjects; each AS's consumer
// feeds its durable queue in the store, drained by the TransactionPusher.
import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { notOwned, partitionsForReplica, type AppServicePush, type BusSubscription } from '@fedgate/bus';
import { BUS, BUS_TOPOLOGY, elasticOwnershipFor, FEDERATION_CLIENT, METRICS_REGISTRY, PartitionOwnership, SERVER_IDENTITY, STORE, type Bus, type BusTopology, type FederationHttpClient, type ServerIdentity, type Store } from '@fedgate/platform';
import type { Registry } from 'prom-client';
import { setOwnedPartitions } from '@fedgate/telemetry';
import type { FedgateConfig } from '@fedgate/config';
import { FEDGATE_CONFIG, SERVICE_LOGGER } from '@fedgate/service-kit';
import type { Logger } from 'pino';
import { AppServiceClient, PushHealth, registerAppServiceQueueGauge, TransactionPusher, type BackoffPolicy } from '../push';
import { ApplicationServiceRegistry } from '../registration';
import { CHAT_SYNC_REGISTRY } from '../tokens';
import { DeviceListOutbox } from '../e2ee/device-list-outbox';
import { RemoteDeviceLists } from '../e2ee/remote-device-lists';
import { keyCountsFor } from '../e2ee/key-counts';
import { republishToDevice } from '../e2ee/to-device.controller';
import { EduFanout } from './edu-fanout';
import { InviteeProvisioning } from './invitee-provisioning';
import { RoomLogFanout } from './room-log-fanout';
import { StoreTransactionQueue } from './store-transaction-queue';

/** How often device lists left stale (their server was down) are resynced. */
const STALE_RESYNC_INTERVAL_MS = 5 * 60_000;
/**
 * How often the device-list change log is drained besides after each change (a change whose drain failed),
 * finishing first the changes a crash cut short before they were logged that are older than this.
 */
const OUTBOX_DRAIN_INTERVAL_MS = 60_000;
/** How long a to-device message is remembered as handed on (a resend after that is delivered again), and a sent request kept. */
const TO_DEVICE_MEMORY_MS = 7 * 24 * 60 * 60_000;
/**
 * How long an item pushed to an application service is remembered as delivered: the same push handed over again
 * within it (a bus redelivery after a crash or an outage, a room-log entry published again) is not sent again.
 */
const DELIVERED_PUSH_MEMORY_MS = 7 * 24 * 60 * 60_000;

/** Optional provider (e.g. in shared providers): the pusher's retry backoff; tests shorten it. */
export const CHAT_SYNC_PUSH_BACKOFF = Symbol.for('fedgate.chat-sync.push-backoff');

@Injectable()
export class ChatSyncWorkers implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly subscriptions: BusSubscription[] = [];
  private pusher: TransactionPusher | undefined;
  private edus: EduFanout | undefined;
  private ownership: PartitionOwnership | undefined;
  private appServiceOwnership: PartitionOwnership | undefined;
  private staleResync: NodeJS.Timeout | undefined;
  private outboxDrain: NodeJS.Timeout | undefined;
  readonly queue: StoreTransactionQueue;

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(CHAT_SYNC_REGISTRY) private readonly registry: ApplicationServiceRegistry,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    @Optional() @Inject(CHAT_SYNC_PUSH_BACKOFF) private readonly backoff: BackoffPolicy | null,
    @Optional() @Inject(METRICS_REGISTRY) private readonly metrics: Registry | null,
    @Optional() @Inject(FEDGATE_CONFIG) private readonly config: FedgateConfig | null,
    @Optional() @Inject(FEDERATION_CLIENT) private readonly federation: FederationHttpClient | null,
  ) {
    this.queue = new StoreTransactionQueue(store, (appServiceId, itemId, kind) =>
      logger.info(
        { component: 'chat-sync', appServiceId, itemId, kind, ...this.pushesBeingQueued.get(itemId) },
        'application service item handed over again after it was delivered; not sent again',
      ),
    );
  }

  /** The bus message of each push being queued: a redelivery (deliveryCount > 1) or a publish again (a new sequence). */
  private readonly pushesBeingQueued = new Map<string, { busSequence: number; deliveryCount: number }>();

  async onApplicationBootstrap(): Promise<void> {
    const log = this.logger.child({ component: 'chat-sync' });
    for (const service of this.registry.services) {
      const { registration: r } = service;
      await this.store.appServices.register({
        id: r.id,
        url: r.url,
        asToken: r.asToken,
        hsToken: r.hsToken,
        senderLocalpart: r.senderLocalpart,
        namespaces: r.namespaces,
        rateLimited: r.rateLimited,
        protocols: r.protocols,
      });
    }
    const appServiceClient = new AppServiceClient();
    const elastic = elasticOwnershipFor(this.config, this.store, 'chat-sync', log.child({ component: 'chat-sync-ownership' }));
    const services = this.registry.services.filter((s) => s.registration.url !== null);
    const health = new PushHealth({ audit: this.store.audit, serverName: this.identity.serverName, logger: log, registry: this.metrics });
    const pusher = new TransactionPusher({
      queue: this.queue,
      client: appServiceClient,
      registrations: this.registry.services.map((s) => s.registration),
      ...(this.backoff ? { backoff: this.backoff } : {}),
      onDeliveryFailure: (failure) => health.failed(failure),
      onDelivered: (success) => health.delivered(success),
      keyCounts: (registration, transaction) => keyCountsFor(this.store, this.registry.services.find((s) => s.id === registration.id)!, transaction),
      onStoreFailure: (appServiceId, err) => log.error({ err, appServiceId }, 'application service delivery failed on our store; trying again shortly'),
      // Elastic: one replica at a time pushes to an AS (its lease); the others leave its queue alone.
      ...(elastic
        ? {
            mayPush: (id: string) => this.appServiceOwnership?.owns(services.findIndex((s) => s.id === id)) === true,
            untilMayPush: async (id: string) => (await this.appServiceOwnership?.ownsAfterRenewal(services.findIndex((s) => s.id === id))) === true,
          }
        : {}),
    });
    this.pusher = pusher;
    if (this.metrics) {
      const pushedHere = elastic ? () => services.filter((_, i) => this.appServiceOwnership?.owns(i) === true).map((s) => s.id) : () => services.map((s) => s.id);
      registerAppServiceQueueGauge(this.metrics, { pushedHere, pendingCount: (id) => this.queue.pendingCount(id) });
    }

    const invitees = new InviteeProvisioning(this.store, this.registry, appServiceClient, this.identity.serverName, log);
    const outbox = new DeviceListOutbox(this.store, this.bus, this.topology, this.identity, this.registry, log);
    const joinedOrLeft = async (userId: string) => {
      await this.store.deviceLists.recordChange(userId, 'membership');
      await deviceLists.untrackIfAlone(userId);
      await outbox.drainLogged();
    };
    const roomLog = new RoomLogFanout(this.store, this.bus, this.topology, this.registry, this.identity.serverName, log, invitees, joinedOrLeft);
    const edus = new EduFanout(this.store, this.bus, this.topology, this.registry, {
      onExpiryFailure: (err) => log.warn({ err }, 'telling application services that typing timed out failed'),
      onUndeliveredToDevice: (details) => log.info(details, 'to-device message not delivered'),
    });
    this.edus = edus;
    const noFederation = async (): Promise<never> => {
      throw new Error('no federation client in this process');
    };
    const deviceLists = new RemoteDeviceLists(this.store, this.federation ?? { getJson: noFederation }, this.identity.serverName, {
      onRefused: (details) => log.warn(details, 'remote device list update refused or resync failed'),
    });
    const resyncStale = () => void deviceLists.resyncStale().catch((err: unknown) => log.warn({ err }, 'resyncing stale device lists failed'));
    resyncStale();
    this.staleResync = setInterval(() => {
      resyncStale();
      void this.store.toDevice.prune(Date.now() - TO_DEVICE_MEMORY_MS).catch((err: unknown) => log.warn({ err }, 'pruning to-device records failed'));
      void this.store.appServiceQueue.pruneDelivered(Date.now() - DELIVERED_PUSH_MEMORY_MS).catch((err: unknown) => log.warn({ err }, 'pruning delivered application service items failed'));
    }, STALE_RESYNC_INTERVAL_MS);
    this.staleResync.unref();
    // Changes cut short or logged before a crash (or whose drain failed) go out now, and /sendToDevice requests cut short.
    const finishAndDrain = async () => {
      await this.store.deviceKeys.finishPendingChanges(Date.now() - OUTBOX_DRAIN_INTERVAL_MS).catch((err: unknown) => log.warn({ err }, 'finishing device changes cut short failed'));
      await outbox.drainLogged();
    };
    await finishAndDrain();
    await republishToDevice(this.store, this.bus, this.topology, this.identity.serverName).catch((err: unknown) => log.warn({ err }, 'to-device requests cut short not published yet'));
    this.outboxDrain = setInterval(() => void finishAndDrain(), OUTBOX_DRAIN_INTERVAL_MS);
    this.outboxDrain.unref();
    if (elastic) {
      // Room-log partitions leased among the live chat-sync replicas; a replica that stalled past its lease naks.
      // A lease merely stale (its renewal slow on a loaded store) is waited out: a nak there held the partition a
      // second per delivery and spent its deliveries, an entry naked ten times was dead-lettered, never pushed.
      const roomLogs = new Map<number, BusSubscription>();
      const ownership: PartitionOwnership = new PartitionOwnership({
        ...elastic,
        partitions: this.topology.roomPartitions,
        onAcquire: async (p) => {
          roomLogs.set(
            p,
            await this.bus.consume(
              this.topology.consumers.chatSyncRoomLog(p),
              async (message) => ((await ownership.ownsAfterRenewal(p)) ? roomLog.handle(message.data, { moreInHand: message.moreInHand }) : notOwned(1_000)),
              { beforeSettle: () => roomLog.flush() },
            ),
          );
        },
        onRelease: async (p) => {
          const subscription = roomLogs.get(p);
          roomLogs.delete(p);
          await subscription?.stop();
        },
      });
      this.ownership = ownership;
      await ownership.start();
    } else {
      const share = this.config?.replicas.chatSync ?? { index: 0, count: 1 };
      const owned = partitionsForReplica(share.index, share.count, this.topology.roomPartitions);
      for (const p of owned) {
        this.subscriptions.push(
          await this.bus.consume(this.topology.consumers.chatSyncRoomLog(p), (message) => roomLog.handle(message.data, { moreInHand: message.moreInHand }), {
            beforeSettle: () => roomLog.flush(),
          }),
        );
      }
      setOwnedPartitions('chat-sync', owned);
    }
    this.subscriptions.push(
      await this.bus.consume(this.topology.consumers.chatSyncEdus(), async (message) => {
        if (await deviceLists.handle(message.data)) await outbox.drainLogged();
        else await edus.handle(message.data, message.messageId);
      }),
    );
    // A bus run's pushes go to the store's queue together (issue 19): held while more of the run is in hand, queued
    // at its last message or, when the run is cut short, before the bus settles any of it.
    const consumePushes = (service: (typeof services)[number]) => {
      const held: string[] = [];
      const queueHeld = async () => {
        try {
          await pusher.flushHeld(service.id);
        } finally {
          for (const id of held.splice(0)) this.pushesBeingQueued.delete(id);
        }
      };
      return this.bus.consume(
        this.topology.consumers.appservicePush(service.id),
        async (message) => {
          const push: AppServicePush = message.data;
          this.pushesBeingQueued.set(push.eventId, { busSequence: message.sequence, deliveryCount: message.deliveryCount });
          held.push(push.eventId);
          const defer = message.moreInHand === true;
          try {
            await pusher.push(service.id, { kind: push.kind ?? 'event', event: push.event, id: push.eventId }, { defer });
          } finally {
            if (!defer) for (const id of held.splice(0)) this.pushesBeingQueued.delete(id);
          }
        },
        { beforeSettle: queueHeld },
      );
    };
    if (elastic) {
      // Each AS (by its place among the registrations, the same in every replica) is leased like a partition.
      const pushes = new Map<number, BusSubscription>();
      const ownership: PartitionOwnership = new PartitionOwnership({
        ...elastic,
        scope: `${elastic.scope}/appservices`,
        partitions: services.length,
        onChange: (owned) => setOwnedPartitions('chat-sync.appservices', owned),
        onAcquire: async (i) => {
          pushes.set(i, await consumePushes(services[i]!));
          pusher.wake(services[i]!.id);
        },
        onRelease: async (i) => {
          const subscription = pushes.get(i);
          pushes.delete(i);
          await subscription?.stop();
          await pusher.release(services[i]!.id);
        },
      });
      this.appServiceOwnership = ownership;
      if (services.length > 0) await ownership.start();
    } else {
      for (const service of services) this.subscriptions.push(await consumePushes(service));
      pusher.start();
    }
  }

  /** Resolves once nothing is being delivered; for tests. */
  async idle(): Promise<void> {
    await this.pusher?.idle();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.staleResync);
    clearInterval(this.outboxDrain);
    await this.ownership?.stop();
    await this.appServiceOwnership?.stop();
    for (const subscription of this.subscriptions.splice(0)) await subscription.stop();
    this.edus?.stop();
    await this.pusher?.stop();
  }
}
