// One Nest application on the fastify adapter per listener: the federation listener is HTTPS, the
// client-server (application service) listener is plain HTTP on loopback.
import type { DynamicModule, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { PinoNestLogger } from '../logger';
import { redactUrl } from '@fedgate/telemetry';
import { routeLabel, type ServiceTelemetry } from '../telemetry-hook';
import { installBodyParsers } from './body-parsers';
import { MatrixExceptionFilter } from './matrix-exception.filter';

export interface HttpListenerOptions {
  /** For logs and metrics: `federation`, `client-server`. */
  name: string;
  bindAddress: string;
  port: number;
  /** PEM certificate chain and key; without them the listener is plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Largest request body read; larger ones are answered 413 M_TOO_LARGE before parsing. */
  maxBodyBytes: number;
}

export interface HttpAppOptions {
  module: Type<unknown> | DynamicModule;
  listener: HttpListenerOptions;
  logger: Logger;
  telemetry?: ServiceTelemetry;
}

export async function createHttpApp(options: HttpAppOptions): Promise<NestFastifyApplication> {
  const { listener, logger, telemetry } = options;
  const adapter = new FastifyAdapter({
    ...(listener.tls ? { https: { cert: listener.tls.cert, key: listener.tls.key } } : {}),
    bodyLimit: listener.maxBodyBytes,
    logger: false,
    // Matrix paths carry IDs like `!room:example.org` and URL-encoded user IDs; keep them intact.
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 1024 },
  } as ConstructorParameters<typeof FastifyAdapter>[0]);
  const fastify = adapter.getInstance() as unknown as FastifyInstance;
  installBodyParsers(fastify);
  installRequestLogging(fastify, listener.name, logger, telemetry);
  // Never on the federation listener: metrics describe internals and that listener faces the internet.
  if (telemetry?.metrics && listener.name !== 'federation') {
    const metrics = telemetry.metrics.bind(telemetry);
    fastify.get('/metrics', async (_request, reply) => {
      const { contentType, body } = await metrics();
      return reply.header('content-type', contentType).send(body);
    });
  }
  const app = await NestFactory.create<NestFastifyApplication>(options.module, adapter, {
    logger: new PinoNestLogger(logger.child({ listener: listener.name })),
    bodyParser: false,
    abortOnError: false,
  });
  app.useGlobalFilters(new MatrixExceptionFilter(logger.child({ listener: listener.name })));
  return app;
}

function installRequestLogging(fastify: FastifyInstance, listener: string, logger: Logger, telemetry?: ServiceTelemetry): void {
  const requestLogger = logger.child({ listener });
  fastify.addHook('onResponse', (request, reply, done) => {
    const durationMs = Math.round(reply.elapsedTime * 10) / 10;
    const level = reply.statusCode >= 500 ? 'error' : 'info';
    requestLogger[level]({ method: request.method, url: redactUrl(request.url), status: reply.statusCode, durationMs, remote: request.ip }, 'request');
    telemetry?.observeRequest?.({ listener, method: request.method, route: routeLabel(request.routeOptions.url), status: reply.statusCode, durationMs });
    done();
  });
}

/** Starts listening; resolves with the base URL actually bound (port 0 picks a free port). */
export async function listenHttpApp(app: NestFastifyApplication, listener: HttpListenerOptions): Promise<string> {
  await app.listen(listener.port, listener.bindAddress);
  const address = app.getHttpServer().address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${listener.tls ? 'https' : 'http'}://${host}:${address.port}`;
}
