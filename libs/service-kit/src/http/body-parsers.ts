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

/** Media uploads are bytes whatever their declared type (a JSON file is uploaded as a file, not parsed). */
const MEDIA_UPLOAD_PATH = /^\/_matrix\/(?:media\/v\d+|client\/v\d+\/media)\/upload(?:[/?]|$)/;

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
    if (MEDIA_UPLOAD_PATH.test(request.url)) {
      request.rawBody = body as Buffer;
      done(null, body);
      return;
    }
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
    if (!request.headers['content-type'] && !MEDIA_UPLOAD_PATH.test(request.url)) {
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
