// The shared instances behind the platform tokens, built once per process from the config.
//   embedded:    one SQLite file holds the store and the EmbeddedBus; every module of the process shares both.
//   distributed: the Mongo store (config.mongo) and JetStream (config.nats); each service process builds its own
//                handles, and processes of one deployment share the data through the database and NATS.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Provider } from '@nestjs/common';
import { busOptionsFor, busTopology, EmbeddedBus, JetStreamBus, type Bus, type BusObserver, type BusTopology, type ConsumerSpec } from '@fedgate/bus';
import type { FedgateConfig } from '@fedgate/config';
import { FederationHttpClient, StoreKeyRing, type FetchRefusal, type KeyRing } from '@fedgate/federation-client';
import type { SharedResources, SigningKeyFile } from '@fedgate/service-kit';
import { openStore as openStoreFor, sqliteConnectionOf, type MongoClientReplacement, type Store } from '@fedgate/store';
import { ownedPartitions, registerConsumerGauges, registerReadinessCheck, registerPartitionLagGauges, type PartitionConsumers } from '@fedgate/telemetry';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { addressAllowlist } from './address-allowlist';
import { holdEmbeddedWriterLease, type WriterLease } from './embedded-writer-lease';
import { BUS, BUS_TOPOLOGY, FEDERATION_CLIENT, KEY_RING, METRICS_REGISTRY, SERVER_IDENTITY, STORE, type ServerIdentity } from './tokens';
import { xMatrixRequestSigner } from './x-matrix-signer';

/** A refused key fetch is logged (sampled: it is what a flood looks like) and counted by reason. */
function keyFetchRefusalReporter(logger: Logger, registry: Registry | undefined): (serverName: string, clientAddress: string, reason: FetchRefusal) => void {
  const refused = registry
    ? new Counter({ name: 'fedgate_key_fetches_refused_total', help: 'Remote key fetches refused by the per-address or global budget', labelNames: ['reason'], registers: [registry] })
    : undefined;
  let logged = 0;
  return (serverName, clientAddress, reason) => {
    refused?.inc({ reason });
    if (logged++ % 100 === 0) logger.warn({ serverName, clientAddress, reason, refusedSoFar: logged }, 'key fetch refused by budget');
  };
}

export interface PlatformContext {
  config: FedgateConfig;
  logger: Logger;
  signingKey: SigningKeyFile;
  /** Where bus counters and consumer gauges go (service-kit's telemetry); absent in some tests. */
  telemetry?: { registry?: Registry; busObserver?: BusObserver };
}

export interface Platform extends SharedResources {
  store: Store;
  bus: Bus;
  topology: BusTopology;
  identity: ServerIdentity;
  federationClient: FederationHttpClient;
  keyRing: KeyRing;
  /** Closes bus, client and store; call after every app has stopped. */
  close(): Promise<void>;
}

export function topologyFor(config: FedgateConfig): BusTopology {
  return busTopology({ prefix: config.bus.prefix, roomPartitions: config.partitions.rooms, destinationPartitions: config.partitions.destinations });
}

/** `store`: the embedded bus shares the embedded store's connection to the file (one page cache, not two emptying each other's). */
async function openBus(config: FedgateConfig, topology: BusTopology, observer?: BusObserver, store?: Store): Promise<Bus> {
  const options = busOptionsFor(topology, observer);
  const bus: Bus =
    config.mode === 'embedded'
      ? new EmbeddedBus({ path: config.sqlite.path, connection: store && sqliteConnectionOf(store), ...options })
      : await JetStreamBus.connect(
          { servers: config.nats.url.split(','), name: `fedgate-${config.bus.prefix}` },
          { ...options, publishRetryMs: config.bus.publishRetryMs, streamReplicas: config.bus.streamReplicas },
        );
  try {
    await bus.start();
  } catch (err) {
    await bus.close();
    throw err;
  }
  return bus;
}

async function openStore(config: FedgateConfig, logger: Logger, registry: Registry | undefined): Promise<Store> {
  if (config.mode === 'embedded') return openStoreFor({ kind: 'sqlite', path: config.sqlite.path });
  return openStoreFor({ kind: 'mongo', url: config.mongo.url, db: config.mongo.database }, { onClientReplaced: mongoClientReplacementReporter(logger, registry) });
}

/** The store's watchdog replaced a MongoDB client that no longer reached a server answering fresh connections. */
function mongoClientReplacementReporter(logger: Logger, registry: Registry | undefined): (replacement: MongoClientReplacement) => void {
  const replaced = registry
    ? new Counter({ name: 'fedgate_store_client_replacements_total', help: 'MongoDB clients replaced by the store watchdog after they stopped reaching a reachable server', registers: [registry] })
    : undefined;
  return (replacement) => {
    replaced?.inc();
    logger.warn(replacement, 'store: MongoDB client replaced (it no longer reached a server that answers fresh connections)');
  };
}

export async function buildFederationClient(config: FedgateConfig, identity: ServerIdentity): Promise<FederationHttpClient> {
  const ca = config.tls.ca.length ? await Promise.all(config.tls.ca.map((file) => readFile(file, 'utf8'))) : undefined;
  return new FederationHttpClient({
    ca,
    addressPolicy: { allow: addressAllowlist(config.federation) },
    signRequest: xMatrixRequestSigner(identity),
    requestTimeoutMs: config.egress.requestTimeoutMs,
    keepAliveTimeoutMs: config.egress.idleConnectionTimeoutMs,
    userAgent: 'fedgate',
  });
}

/** The durable consumers carrying an owned partition's work, by the stage that owns it (`setOwnedPartitions`). */
export function partitionConsumers(topology: BusTopology): PartitionConsumers {
  const { consumers } = topology;
  return (stage, p) => {
    switch (stage) {
      case 'state-resolver':
        return [
          { stage, consumer: consumers.stateResolverInbound(p) },
          { stage: 'state-resolver.parked', consumer: consumers.stateResolverParked(p) },
        ];
      case 'federation-egress.rooms':
        return [{ stage, consumer: consumers.egressRoomLog(p) }];
      case 'federation-egress.destinations':
        return [{ stage, consumer: consumers.egressDestinations(p) }];
      case 'chat-sync':
        return [{ stage, consumer: consumers.chatSyncRoomLog(p) }];
      default:
        return [];
    }
  };
}

/**
 * The consumers this process works on, for lag and ack-pending gauges (those not created yet are skipped):
 * those of its owned partitions, and the unpartitioned ones of the stages it runs.
 */
function ownedConsumers(topology: BusTopology): ConsumerSpec[] {
  const byStage = partitionConsumers(topology);
  const owned = ownedPartitions();
  const stages = [...owned.keys()];
  const partitioned = [...owned].flatMap(([stage, partitions]) => partitions.flatMap((p) => byStage(stage, p).map((c) => c.consumer)));
  const { consumers } = topology;
  const unpartitioned = [
    ...(stages.some((s) => s.startsWith('chat-sync')) ? [consumers.chatSyncEdus()] : []),
    ...(stages.some((s) => s.startsWith('federation-egress')) ? [consumers.egressOutboundEdus(), consumers.egressServerUp()] : []),
  ];
  return [...partitioned, ...unpartitioned];
}

/**
 * Readiness of the shared parts: the store answers a read, the bus a round trip (JetStream: a ping to the
 * server; the embedded bus lives in this process). Registered for /readyz; returns their removal.
 */
export function registerPlatformReadiness(store: Store, bus: Bus): () => void {
  const removals = [
    registerReadinessCheck('store', async () => {
      await store.leases.live('health/', Date.now());
    }),
    registerReadinessCheck('bus', async () => {
      if (!(bus instanceof JetStreamBus)) return;
      if (bus.connection.isClosed()) throw new Error('NATS connection closed');
      await bus.connection.rtt();
    }),
  ];
  return () => removals.forEach((remove) => remove());
}

/** The embedded gateway's hold on its data directory (embedded-writer-lease.ts); a lost hold stops the process. */
function holdWriterLease(storePath: string, store: Store, logger: Logger): Promise<WriterLease> {
  return holdEmbeddedWriterLease({
    leases: store.leases,
    storePath,
    host: hostname(),
    pid: process.pid,
    token: randomUUID(),
    onLost: (taker) => {
      logger.fatal({ storePath, taker }, 'another process took this gateway\'s data directory while it was frozen past its lease: stopping');
      process.kill(process.pid, 'SIGTERM');
    },
    onRenewFailed: (err) => logger.warn({ err, storePath }, 'renewing the data directory lease failed; trying again'),
  });
}

/** How long closing the bus, the federation client or the store may take before shutdown goes on without it. */
const CLOSE_STEP_TIMEOUT_MS = 3_000;

/** Opens store and bus for the configured mode and builds the providers every service module injects. */
export async function buildPlatform({ config, logger, signingKey, telemetry }: PlatformContext): Promise<Platform> {
  const identity: ServerIdentity = { serverName: config.serverName, signingKey: signingKey.current, allKeys: signingKey.all };
  const topology = topologyFor(config);
  const store = await openStore(config, logger, telemetry?.registry);
  let bus: Bus;
  let writerLease: WriterLease | undefined;
  try {
    if (config.mode === 'embedded') writerLease = await holdWriterLease(config.sqlite.path, store, logger);
    bus = await openBus(config, topology, telemetry?.busObserver, store);
  } catch (err) {
    await writerLease?.release().catch(() => undefined);
    await store.close();
    throw err;
  }
  if (telemetry?.registry) {
    registerConsumerGauges(telemetry.registry, bus, () => ownedConsumers(topology));
    registerPartitionLagGauges(telemetry.registry, bus, partitionConsumers(topology));
  }
  const removeReadiness = registerPlatformReadiness(store, bus);
  const federationClient = await buildFederationClient(config, identity);
  const keyRing: KeyRing = new StoreKeyRing({
    serverKeys: store.serverKeys,
    fetcher: federationClient,
    ownServerName: identity.serverName,
    ownKeys: () => identity.allKeys,
    notaries: config.federation.trustedKeyServers,
    onFetchFailure: (serverName, source, err) => logger.warn({ err, serverName, source }, 'fetching server keys failed'),
    maxCachedServers: config.keyRing.maxCachedServers,
    fetchLimits: {
      perAddressBurst: config.keyRing.fetchesPerAddressBurst,
      perAddressPerMinute: config.keyRing.fetchesPerAddressPerMinute,
      perSecond: config.keyRing.fetchesPerSecond,
      maxAddresses: config.keyRing.maxCachedServers,
    },
    onFetchRefused: keyFetchRefusalReporter(logger, telemetry?.registry),
  });
  logger.info({ mode: config.mode, busPrefix: topology.prefix, store: config.mode === 'embedded' ? config.sqlite.path : config.mongo.database }, 'platform ready');

  const providers: Provider[] = [
    { provide: STORE, useValue: store },
    { provide: BUS, useValue: bus },
    { provide: BUS_TOPOLOGY, useValue: topology },
    { provide: SERVER_IDENTITY, useValue: identity },
    { provide: FEDERATION_CLIENT, useValue: federationClient },
    { provide: KEY_RING, useValue: keyRing },
    { provide: METRICS_REGISTRY, useValue: telemetry?.registry ?? null },
  ];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      removeReadiness();
      // Each step bounded (the bus or the store may be unreachable): the next ones still run, and the process stops.
      for (const [name, step] of [
        ['bus', () => bus.close()],
        ['federation client', () => federationClient.close()],
        ['writer lease', async () => writerLease?.release()],
        ['store', () => store.close()],
      ] as const) {
        let timer: NodeJS.Timeout | undefined;
        const cutShort = new Promise<'cut short'>((resolve) => (timer = setTimeout(() => resolve('cut short'), CLOSE_STEP_TIMEOUT_MS)));
        const outcome = await Promise.race([step().catch((err: unknown) => logger.error({ err }, `closing the ${name} failed`)), cutShort]);
        clearTimeout(timer);
        if (outcome === 'cut short') logger.warn({ timeoutMs: CLOSE_STEP_TIMEOUT_MS }, `closing the ${name} did not finish in time; going on without it`);
      }
    })());
  return { store, bus, topology, identity, federationClient, keyRing, providers, close };
}

/** service-kit's `shared` hook: `{ name, workers: [...], shared: sharedPlatform }`. */
export const sharedPlatform = (context: PlatformContext): Promise<SharedResources> => buildPlatform(context);
