// One Nest application on the fastify adapter per listener: the federation listener is HTTPS, the
// client-server (application service) listener is plain HTTP on loopback.
import type { DynamicModule, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { PinoNestLogger } from '../logger';
import { endHttpServerSpan, redactUrl, startHttpServerSpan } from '@fedgate/telemetry';
import { context, type Span } from '@opentelemetry/api';
import { routeLabel, type ServiceTelemetry } from '../telemetry-hook';
import { installBodyParsers, type JsonBodyRules } from './body-parsers';
import { MatrixError } from './matrix-error';
import { MatrixExceptionFilter } from './matrix-exception.filter';

/** How long a client may take; each cut is the socket closed (a 408 when a response can still be sent). */
export interface HttpTimeouts {
  /** From connection (or the previous response) to the end of the request headers. */
  headersMs: number;
  /** From connection to the end of the request body. Handler time does not count. */
  requestMs: number;
  /** An idle keep-alive connection between requests. */
  keepAliveMs: number;
  /** TLS handshake (HTTPS listeners). */
  handshakeMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 60_000, keepAliveMs: 30_000, handshakeMs: 10_000 };

/** Matrix path parameters (room, event, user IDs, media IDs) are far shorter; longer is refused (400, Matrix body). */
export const MAX_PATH_PARAM_LENGTH = 1024;

export interface HttpListenerOptions {
  /** For logs and metrics: `federation`, `client-server`. */
  name: string;
  bindAddress: string;
  port: number;
  /** PEM certificate chain and key; without them the listener is plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Largest request body read; larger ones are answered 413 M_TOO_LARGE before parsing. */
  maxBodyBytes: number;
  /** Routes (by their path pattern, e.g. `/_matrix/federation/v1/send/:txnId`) allowed a larger body. */
  largeBodyRoutes?: { pattern: RegExp; maxBodyBytes: number };
  /** JSON body rules; default: depth 128, any JSON number. */
  json?: JsonBodyRules;
  /** Continue a caller's trace from its `traceparent` (the chat platform's listener); never for federation. */
  trustTraceContext?: boolean;
  timeouts?: Partial<HttpTimeouts>;
}

const DEFAULT_JSON_RULES: JsonBodyRules = { maxDepth: 128, strictNumbers: false };

export interface HttpAppOptions {
  module: Type<unknown> | DynamicModule;
  listener: HttpListenerOptions;
  logger: Logger;
  telemetry?: ServiceTelemetry;
}

export async function createHttpApp(options: HttpAppOptions): Promise<NestFastifyApplication> {
  const { listener, logger, telemetry } = options;
  const timeouts = { ...DEFAULT_HTTP_TIMEOUTS, ...listener.timeouts };
  // Node checks header and request timeouts on this interval (default 30 s, which let a header trickle 82 s).
  const serverOptions = {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(timeouts.headersMs / 4))),
  };
  const adapter = new FastifyAdapter({
    ...(listener.tls ? { https: { cert: listener.tls.cert, key: listener.tls.key, handshakeTimeout: timeouts.handshakeMs, ...serverOptions } } : { http: serverOptions }),
    bodyLimit: listener.maxBodyBytes,
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    logger: false,
    // Matrix paths carry IDs like `!room:example.org` and URL-encoded user IDs; keep them intact.
    maxParamLength: MAX_PATH_PARAM_LENGTH,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: MAX_PATH_PARAM_LENGTH },
    clientErrorHandler: answerClientError,
    // Errors the router raises before any route or hook runs: answered as Matrix errors like the rest.
    frameworkErrors: (error: Error & { code?: string }, _request: unknown, reply: { code(status: number): { header(name: string, value: string): { send(body: unknown): void } } }) => {
      const matrixError = MatrixError.invalidParam(error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? `A path parameter is longer than ${MAX_PATH_PARAM_LENGTH} characters` : 'The request path is not valid');
      reply.code(matrixError.status).header('content-type', 'application/json').send(matrixError.toBody());
    },
  } as ConstructorParameters<typeof FastifyAdapter>[0]);
  const fastify = adapter.getInstance() as unknown as FastifyInstance;
  installBodyParsers(fastify, listener.json ?? DEFAULT_JSON_RULES);
  const largeBodyRoutes = listener.largeBodyRoutes;
  if (largeBodyRoutes) {
    fastify.addHook('onRoute', (route) => {
      if (largeBodyRoutes.pattern.test(route.url)) route.bodyLimit = largeBodyRoutes.maxBodyBytes;
    });
  }
  installRequestSpans(fastify, listener);
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

/** Requests node's parser gives up on (timeouts, oversized or malformed headers): a Matrix body, then the socket closes. */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, matrixError] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', MatrixError.unknown('The request was not received in time', 408)]
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', new MatrixError(431, 'M_TOO_LARGE', 'Request headers are too large')]
        : [400, 'Bad Request', new MatrixError(400, 'M_UNKNOWN', 'Malformed HTTP request')];
  const body = JSON.stringify(matrixError.toBody());
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
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

const requestSpans = new WeakMap<object, { span: Span; context: ReturnType<typeof context.active> }>();

/**
 * A server span per request: started when the request arrives, made active for the handler (so the bus
 * publishes and outgoing calls it makes are its children), ended with the response.
 */
function installRequestSpans(fastify: FastifyInstance, listener: HttpListenerOptions): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    requestSpans.set(
      request,
      startHttpServerSpan({
        method: request.method,
        route: routeLabel(request.routeOptions.url),
        path: request.url.split('?')[0]!,
        listener: listener.name,
        clientAddress: request.ip,
        headers: request.headers,
        trustTraceContext: listener.trustTraceContext === true,
      }),
    );
    done();
  });
  // Body parsing runs in the socket's context, so the span is activated just before the handler.
  fastify.addHook('preHandler', (request, _reply, done) => {
    const started = requestSpans.get(request);
    if (started) context.with(started.context, done);
    else done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const started = requestSpans.get(request);
    requestSpans.delete(request);
    if (started) endHttpServerSpan(started.span, reply.statusCode);
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
