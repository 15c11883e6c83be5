// HTTP spans around the hops the bus spans do not see: a request served (federation `/send` in, the
// application service's calls), a request made (federation `/send` out, the push to the application service).
import { recordSpanError } from '@fedgate/bus';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';

const tracer = () => trace.getTracer('@fedgate/http');

export interface HttpServerSpanRequest {
  method: string;
  /** The route pattern (`/_matrix/federation/v1/send/:txnId`): span names stay few whatever the URLs. */
  route: string;
  /** The path without its query string (a query may carry a token). */
  path: string;
  listener: string;
  clientAddress?: string;
  headers: Record<string, string | string[] | undefined>;
  /**
   * Continue the caller's trace from its `traceparent` header. Only for callers we trust with our traces
   * (the chat platform); a remote homeserver's header is ignored, so it can neither join our traces nor
   * choose their IDs.
   */
  trustTraceContext: boolean;
}

/** Starts (does not activate) the server span of one request; end it with `endHttpServerSpan`. */
export function startHttpServerSpan(request: HttpServerSpanRequest): { span: Span; context: Context } {
  const parent = request.trustTraceContext ? propagation.extract(ROOT_CONTEXT, request.headers, headerGetter) : ROOT_CONTEXT;
  const span = tracer().startSpan(
    `${request.method} ${request.route}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': request.method,
        'http.route': request.route,
        'url.path': request.path,
        'fedgate.listener': request.listener,
        ...(request.clientAddress ? { 'client.address': request.clientAddress } : {}),
      },
    },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

export function endHttpServerSpan(span: Span, status: number): void {
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

const headerGetter = {
  get: (carrier: Record<string, string | string[] | undefined>, key: string) => carrier[key.toLowerCase()],
  keys: (carrier: Record<string, string | string[] | undefined>) => Object.keys(carrier),
};

export interface HttpClientSpanRequest {
  method: string;
  /** A template, not the URL: `/_matrix/federation/v1/send/{txnId}`. */
  route: string;
  /** The server asked: a Matrix server name, an application service's host. */
  serverAddress: string;
  attributes?: Attributes;
  /**
   * Headers to carry this span's W3C trace context (`traceparent`): only toward a party trusted with our
   * trace IDs (the chat platform's application service), never to other homeservers.
   */
  propagateInto?: Record<string, string>;
}

/**
 * Runs one outgoing request in a client span, child of the active context. `statusOf` reads the HTTP status
 * of an answer; a thrown error's `status` (FederationHttpError, AppServiceRequestError) is recorded too.
 */
export async function withHttpClientSpan<R>(request: HttpClientSpanRequest, send: () => Promise<R>, statusOf: (result: R) => number): Promise<R> {
  return tracer().startActiveSpan(
    `${request.method} ${request.route}`,
    {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': request.method, 'url.template': request.route, 'server.address': request.serverAddress, ...request.attributes },
    },
    async (span) => {
      if (request.propagateInto) propagation.inject(context.active(), request.propagateInto);
      try {
        const result = await send();
        const status = statusOf(result);
        span.setAttribute('http.response.status_code', status);
        if (status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
        return result;
      } catch (error) {
        const status = (error as { status?: unknown }).status;
        if (typeof status === 'number') span.setAttribute('http.response.status_code', status);
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'string') span.setAttribute('error.type', code);
        recordSpanError(span, error as Error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}
