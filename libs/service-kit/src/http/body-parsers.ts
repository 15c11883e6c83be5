// Request bodies: fastify's `bodyLimit` refuses oversized bodies before they are read or parsed (413
// M_TOO_LARGE via the exception filter). JSON (and a body without a content type) is parsed here so a
// syntax error is 400 M_NOT_JSON; the raw bytes stay on `request.rawBody` for code that must re-parse
// strictly (room versions with integer-only canonical JSON). Other types arrive as a Buffer (media).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MatrixError } from './matrix-error';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

function parseJsonBody(request: FastifyRequest, body: Buffer): unknown {
  request.rawBody = body;
  if (body.length === 0) throw MatrixError.notJson('Request body is empty');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw MatrixError.notJson(`Content not JSON: ${(err as Error).message}`);
  }
}

export function installBodyParsers(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  const jsonParser = (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    try {
      done(null, parseJsonBody(request, body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  };
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, jsonParser);
  fastify.addContentTypeParser(/^application\/[\w.+-]+\+json$/, { parseAs: 'buffer' }, jsonParser);
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    // Matrix bodies are JSON whatever the header says; only a declared non-JSON type stays raw.
    if (!request.headers['content-type']) {
      try {
        done(null, bytes.length === 0 ? undefined : parseJsonBody(request, bytes));
      } catch (err) {
        done(err as Error, undefined);
      }
      return;
    }
    request.rawBody = bytes;
    done(null, bytes);
  });
}
