// Request bodies: fastify's `bodyLimit` (per route, see http-app) refuses oversized bodies before they are
// read or parsed (413 M_TOO_LARGE via the exception filter). JSON (and a body without a content type) is
// parsed here with @fedgate/protocol's parseJson: nesting depth is checked on the raw bytes before any
// object is built, lone surrogates and invalid UTF-8 are refused, and — where the listener asks for it —
// canonical JSON's number rules (integers within ±(2^53−1), no fractions or exponents). A syntax error is
// 400 M_NOT_JSON, a rule broken 400 M_BAD_JSON. The raw bytes stay on `request.rawBody` for code that must
// re-parse strictly. Other types arrive as a Buffer. Media uploads are not read here at all: their body stays a
// stream (`request.uploadStream`) that the handler writes to disk as it arrives, so an upload is never held in
// memory (fastify still refuses a declared Content-Length over the route's limit before anything is read).
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { JsonParseError, parseJson } from '@fedgate/protocol';
import { MatrixError } from './matrix-error';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    /** A media upload's body, unread (see MEDIA_UPLOAD_PATH). */
    uploadStream?: Readable;
  }
}

export interface JsonBodyRules {
  /** Deepest nesting accepted; deeper bodies are refused before they are parsed. */
  maxDepth: number;
  /** Canonical JSON's number rules: no floats, no integers outside ±(2^53−1). */
  strictNumbers: boolean;
}

/** Media uploads are bytes whatever their declared type (a JSON file is uploaded as a file, not parsed). */
export const MEDIA_UPLOAD_PATH = /^\/_matrix\/(?:media\/v\d+|client\/v\d+\/media)\/upload(?:[/?]|$)/;

/**
 * Account data and room tags are never signed or put in an event, and the spec has fractions in them (a tag's
 * `order`): canonical JSON's number rules do not apply there.
 */
export const ANY_NUMBERS_PATH = /^\/_matrix\/client\/[^/]+\/user\/[^/]+\/(?:rooms\/[^/]+\/)?(?:account_data|tags)\//;

function parseJsonBody(request: FastifyRequest, body: Buffer, rules: JsonBodyRules): unknown {
  request.rawBody = body;
  if (body.length === 0) throw MatrixError.notJson('Request body is empty');
  try {
    return parseJson(body, { maxDepth: rules.maxDepth, strict: rules.strictNumbers && !ANY_NUMBERS_PATH.test(request.url) });
  } catch (err) {
    if (err instanceof JsonParseError) throw new MatrixError(400, err.errcode, err.message);
    throw MatrixError.notJson(`Content not JSON: ${(err as Error).message}`);
  }
}

/** An empty body for the parsers, reporting the length of the upload it stands for (fastify checks it against Content-Length). */
function standInFor(request: FastifyRequest): Readable {
  const standIn = Readable.from([]) as Readable & { receivedEncodedLength?: number };
  const declared = Number(request.headers['content-length']);
  if (Number.isSafeInteger(declared)) standIn.receivedEncodedLength = declared;
  return standIn;
}

export function installBodyParsers(fastify: FastifyInstance, rules: JsonBodyRules): void {
  fastify.removeAllContentTypeParsers();
  fastify.addHook('preParsing', async (request, _reply, payload) => {
    if ((request.method !== 'POST' && request.method !== 'PUT') || !MEDIA_UPLOAD_PATH.test(request.url)) return payload;
    request.uploadStream = payload;
    return standInFor(request);
  });
  const jsonParser = (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    if (MEDIA_UPLOAD_PATH.test(request.url)) {
      request.rawBody = body as Buffer;
      done(null, body);
      return;
    }
    try {
      done(null, parseJsonBody(request, body as Buffer, rules));
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
        done(null, bytes.length === 0 ? undefined : parseJsonBody(request, bytes, rules));
      } catch (err) {
        done(err as Error, undefined);
      }
      return;
    }
    request.rawBody = bytes;
    done(null, bytes);
  });
}
