// Turns anything a request can fail with into the MatrixError it is answered with.
import { HttpException } from '@nestjs/common';
import { Errcode, MatrixError } from './matrix-error';

const ERRCODE_BY_STATUS: Record<number, string> = {
  400: Errcode.BadJson,
  401: Errcode.Unauthorized,
  403: Errcode.Forbidden,
  404: Errcode.NotFound,
  405: Errcode.Unrecognized,
  413: Errcode.TooLarge,
  429: Errcode.LimitExceeded,
};

const STATUS_BY_ERRCODE: Record<string, number> = {
  M_UNAUTHORIZED: 401,
  M_MISSING_TOKEN: 401,
  M_UNKNOWN_TOKEN: 401,
  M_FORBIDDEN: 403,
  M_NOT_FOUND: 404,
  M_TOO_LARGE: 413,
  M_LIMIT_EXCEEDED: 429,
  M_UNKNOWN: 500,
};

// Errors fastify raises before a handler runs, found as the cause of the HttpException Nest wraps them in.
const FASTIFY_ERRORS: Record<string, () => MatrixError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => MatrixError.tooLarge(),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => MatrixError.notJson('Request body does not match its Content-Length'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => MatrixError.notJson('Request body is empty'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => MatrixError.unrecognized('Unsupported content type'),
};

interface ErrorWithErrcode {
  errcode: string;
  message: string;
}

/** Libraries' own errors (e.g. @fedgate/protocol's ProtocolError) carry a Matrix errcode. */
function hasErrcode(value: unknown): value is ErrorWithErrcode {
  return value instanceof Error && typeof (value as unknown as Partial<ErrorWithErrcode>).errcode === 'string' && (value as unknown as ErrorWithErrcode).errcode.startsWith('M_');
}

function messageOf(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  return typeof message === 'string' ? message : exception.message;
}

function fastifyCode(value: unknown): string | undefined {
  const code = (value as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('FST_') ? code : undefined;
}

/**
 * The MatrixError for `exception`, or undefined when it is not a client error we know (answer 500).
 * `unmatchedRoute`: no route matched the request, so a 404 means "unknown endpoint".
 */
export function toMatrixError(exception: unknown, unmatchedRoute = false): MatrixError | undefined {
  if (exception instanceof MatrixError) return exception;
  if (hasErrcode(exception)) return new MatrixError(STATUS_BY_ERRCODE[exception.errcode] ?? 400, exception.errcode, exception.message);
  const code = fastifyCode(exception) ?? (exception instanceof HttpException ? fastifyCode(exception.cause) : undefined);
  if (code && FASTIFY_ERRORS[code]) return FASTIFY_ERRORS[code]();
  const cause = exception instanceof HttpException ? exception.cause : undefined;
  if (exception instanceof SyntaxError || cause instanceof SyntaxError) return MatrixError.notJson();
  if (cause instanceof MatrixError) return cause;
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404 && unmatchedRoute) return MatrixError.unrecognized();
    if (status >= 500) return undefined;
    return new MatrixError(status, ERRCODE_BY_STATUS[status] ?? Errcode.Unknown, messageOf(exception));
  }
  return undefined;
}
