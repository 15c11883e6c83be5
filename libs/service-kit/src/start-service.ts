// How every fedgate process starts: config → logger → data dir, signing key, TLS material → Nest apps
// (federation HTTPS listener, client-server HTTP listener, worker context) → ready line → signal handlers.
import type { DynamicModule, INestApplicationContext, Provider, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig, serverNameHost, type FedgateConfig } from '@fedgate/config';
import type { Logger } from 'pino';
import { markServiceStarted, setServiceInstanceId } from '@fedgate/telemetry';
import { ensureDataDir } from './first-start/data-dir';
import { ensureSigningKey, type SigningKeyFile } from './first-start/signing-key';
import { loadTlsMaterial } from './first-start/tls-certificate';
import { FederationDiscoveryModule } from './federation-discovery/federation-discovery.module';
import { MAX_CANONICAL_JSON_DEPTH } from '@fedgate/protocol';
import { MEDIA_UPLOAD_PATH } from './http/body-parsers';
import { createHttpApp, listenHttpApp, type HttpListenerOptions } from './http/http-app';
import { createLogger, PinoNestLogger } from './logger';
import { serviceRootModule, type ServiceRuntime } from './runtime.module';
import { installGracefulShutdown } from './shutdown';
import { createServiceTelemetry, type ServiceTelemetry } from './telemetry-hook';
import { limitHeapGrowth } from './heap-growth';
import { releaseStartUpGarbage } from './start-up/release-start-up-garbage';

export type ServiceModule = Type<unknown> | DynamicModule;

export interface SharedResources {
  /** Given to every app of the process (embedded mode: one bus and one store for all services). */
  providers: Provider[];
  /** Called after every app has closed. */
  close?: () => Promise<void>;
}

export interface ServiceDefinition {
  /** Names the process in logs and the ready line: `gateway`, `federation-ingress`, … */
  name: string;
  /** Served on the federation HTTPS listener (config.federation); the discovery endpoints are added. */
  federation?: ServiceModule[];
  /** Served on the plain-HTTP client-server listener (config.clientServer), when enabled. */
  clientServer?: ServiceModule[];
  /** Run without HTTP: bus consumers, schedulers. */
  workers?: ServiceModule[];
  /** Builds what all apps share, once config, logger and signing key exist. */
  shared?: (context: { config: FedgateConfig; logger: Logger; signingKey: SigningKeyFile; telemetry?: ServiceTelemetry }) => Promise<SharedResources> | SharedResources;
}

export interface StartServiceOptions {
  /** Otherwise loaded from defaults, the config file and the environment. */
  config?: FedgateConfig;
  logger?: Logger;
  /** Exit on SIGTERM/SIGINT after closing (default true; tests pass false and call close()). */
  handleSignals?: boolean;
  /** Write the ready line to stdout (default true). */
  printReadyLine?: boolean;
  /** One memory-reducing collection before the ready line (default false; a service's own process, `runService`, does it). */
  releaseStartUpGarbage?: boolean;
}

export interface RunningService {
  config: FedgateConfig;
  logger: Logger;
  signingKey: SigningKeyFile;
  /** Base URL the federation listener is bound to, e.g. `https://0.0.0.0:8448`. */
  federationUrl?: string;
  /** Base URL the client-server listener is bound to, e.g. `http://127.0.0.1:8008`. */
  clientServerUrl?: string;
  apps: INestApplicationContext[];
  close(): Promise<void>;
}

const KiB = 1024;
/** Every federation request but a transaction is one event or a small query. */
export const FEDERATION_SMALL_BODY_BYTES = 512 * KiB;
/** Client-server JSON bodies (createRoom with its initial state is the largest); uploads get limits.maxUploadBytes. */
export const CLIENT_SERVER_JSON_BODY_BYTES = 1024 * KiB;
/** Federation bodies nest a few levels around events (transaction → pdus → event), events at most canonical JSON's depth. */
const FEDERATION_JSON_DEPTH = MAX_CANONICAL_JSON_DEPTH + 4;
/** What a bridge sends becomes event content that we sign: canonical JSON rules, refused before any command. */
const CLIENT_SERVER_JSON_DEPTH = 128;

export function federationListener(config: FedgateConfig): Omit<HttpListenerOptions, 'tls'> {
  return {
    name: 'federation',
    ...config.federation,
    maxBodyBytes: Math.min(FEDERATION_SMALL_BODY_BYTES, config.federation.maxRequestBytes),
    largeBodyRoutes: { pattern: /^\/_matrix\/federation\/v1\/send\//, maxBodyBytes: config.federation.maxRequestBytes },
    json: { maxDepth: FEDERATION_JSON_DEPTH, strictNumbers: false },
  };
}

export function clientServerListener(config: FedgateConfig): HttpListenerOptions {
  return {
    name: 'client-server',
    ...config.clientServer,
    // Only the chat platform calls this listener: its trace context is carried on into ours.
    trustTraceContext: true,
    maxBodyBytes: Math.min(CLIENT_SERVER_JSON_BODY_BYTES, config.limits.maxUploadBytes),
    largeBodyRoutes: { pattern: MEDIA_UPLOAD_PATH, maxBodyBytes: config.limits.maxUploadBytes },
    json: { maxDepth: CLIENT_SERVER_JSON_DEPTH, strictNumbers: true },
  };
}

export function readyLine(name: string, service: Pick<RunningService, 'config' | 'federationUrl' | 'clientServerUrl' | 'signingKey'>): string {
  const parts = [`server name ${service.config.serverName}`, `signing key ${service.signingKey.current.keyId}`];
  if (service.federationUrl) parts.push(`federation ${service.federationUrl}`);
  if (service.clientServerUrl) parts.push(`client-server ${service.clientServerUrl}`);
  return `fedgate ${name} ready: ${parts.join(', ')}\n`;
}

export async function startService(definition: ServiceDefinition, options: StartServiceOptions = {}): Promise<RunningService> {
  const config = options.config ?? loadConfig();
  limitHeapGrowth(config.memory?.heapGrowingPercent ?? 0);
  if (config.replicas?.instanceId) setServiceInstanceId(config.replicas.instanceId);
  const logger = options.logger ?? createLogger(definition.name, config.log.level);
  const telemetry = createServiceTelemetry(config, definition.name, logger);
  await ensureDataDir(config.dataDir);
  const signingKey = await ensureSigningKey(config.signingKey.path, logger);
  await telemetry.start?.();
  const shared = (await definition.shared?.({ config, logger, signingKey, telemetry })) ?? { providers: [] };
  const runtime: ServiceRuntime = { config, logger, sharedProviders: shared.providers };

  const apps: INestApplicationContext[] = [];
  const service: RunningService = { config, logger, signingKey, apps, close: () => closeAll() };
  let closed: Promise<void> | undefined;
  const closeAll = () =>
    (closed ??= (async () => {
      markServiceStarted(false);
      for (const app of [...apps].reverse()) await app.close().catch((err: unknown) => logger.error({ err }, 'closing an app failed'));
      await shared.close?.();
      await telemetry.shutdown?.();
    })());

  try {
    if (definition.workers?.length) {
      const workers = await NestFactory.createApplicationContext(serviceRootModule(runtime, definition.workers), {
        logger: new PinoNestLogger(logger),
        abortOnError: false,
      });
      apps.push(workers);
    }
    if (definition.federation) {
      const tls = await loadTlsMaterial(config.tls, serverNameHost(config.serverName), logger);
      const listener = { ...federationListener(config), tls };
      const app = await createHttpApp({ module: serviceRootModule(runtime, [FederationDiscoveryModule, ...definition.federation]), listener, logger, telemetry });
      apps.push(app);
      service.federationUrl = await listenHttpApp(app, listener);
    }
    if (definition.clientServer && config.clientServer.enabled) {
      const listener = clientServerListener(config);
      const app = await createHttpApp({ module: serviceRootModule(runtime, definition.clientServer), listener, logger, telemetry });
      apps.push(app);
      service.clientServerUrl = await listenHttpApp(app, listener);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }

  if (options.releaseStartUpGarbage) releaseStartUpGarbage();
  markServiceStarted(true);
  if (options.handleSignals !== false) installGracefulShutdown({ logger, close: closeAll });
  if (options.printReadyLine !== false) process.stdout.write(readyLine(definition.name, service));
  return service;
}

/** For an app's main.ts: start, or print why not and exit 1. */
export function runService(definition: ServiceDefinition): void {
  startService(definition, { releaseStartUpGarbage: true }).catch((err: unknown) => {
    const message = err instanceof Error && err.name === 'ConfigError' ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`fedgate ${definition.name} failed to start: ${message}\n`);
    process.exit(1);
  });
}
