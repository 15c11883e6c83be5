import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { redactSecrets, redactUrl } from '@fedgate/telemetry';
import { MatrixError } from './matrix-error';
import { toMatrixError } from './to-matrix-error';

/** Answers every failed request with a Matrix error body; anything unexpected is a logged 500 M_UNKNOWN. */
@Catch()
export class MatrixExceptionFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    let error = toMatrixError(exception, request.is404 === true);
    if (!error) {
      this.logger.error({ err: exception, method: request.method, url: redactUrl(request.url) }, 'request failed');
      error = MatrixError.unknown();
    }
    if (reply.sent) return;
    // An error message may quote the request (a URL with ?access_token=): never echo a token back.
    const body = JSON.parse(redactSecrets(JSON.stringify(error.toBody()))) as ReturnType<MatrixError['toBody']>;
    // The header is what HTTP clients and the spec (v1.10) go by; retry_after_ms stays for older peers.
    if (typeof body.retry_after_ms === 'number') void reply.header('retry-after', String(Math.max(1, Math.ceil(body.retry_after_ms / 1000))));
    void reply.status(error.status).header('content-type', 'application/json').send(body);
  }
}
