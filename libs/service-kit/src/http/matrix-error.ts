// The error every handler throws to answer with a Matrix error body: `{ errcode, error, ...extra }`.

/** Standard Matrix error codes (client-server API "Common error codes", and those federation uses). */
export const Errcode = {
  BadJson: 'M_BAD_JSON',
  Forbidden: 'M_FORBIDDEN',
  InvalidParam: 'M_INVALID_PARAM',
  LimitExceeded: 'M_LIMIT_EXCEEDED',
  MissingParam: 'M_MISSING_PARAM',
  MissingToken: 'M_MISSING_TOKEN',
  NotFound: 'M_NOT_FOUND',
  NotJson: 'M_NOT_JSON',
  TooLarge: 'M_TOO_LARGE',
  Unauthorized: 'M_UNAUTHORIZED',
  Unknown: 'M_UNKNOWN',
  UnknownToken: 'M_UNKNOWN_TOKEN',
  Unrecognized: 'M_UNRECOGNIZED',
  Exclusive: 'M_EXCLUSIVE',
  IncompatibleRoomVersion: 'M_INCOMPATIBLE_ROOM_VERSION',
  UnsupportedRoomVersion: 'M_UNSUPPORTED_ROOM_VERSION',
} as const;

export type KnownErrcode = (typeof Errcode)[keyof typeof Errcode];

export interface MatrixErrorBody {
  errcode: string;
  error: string;
  [extra: string]: unknown;
}

export class MatrixError extends Error {
  constructor(
    /** HTTP status code of the response. */
    readonly status: number,
    readonly errcode: KnownErrcode | (string & {}),
    /** Human-readable text, sent to the peer as `error`. */
    readonly error: string,
    /** Further fields of the body, e.g. `{ retry_after_ms: 500 }` or `{ room_version: '1' }`. */
    readonly extra?: Record<string, unknown>,
  ) {
    super(`${errcode}: ${error}`);
    this.name = 'MatrixError';
  }

  toBody(): MatrixErrorBody {
    return { ...this.extra, errcode: this.errcode, error: this.error };
  }

  static badJson(error: string): MatrixError {
    return new MatrixError(400, Errcode.BadJson, error);
  }
  static notJson(error = 'Content not JSON.'): MatrixError {
    return new MatrixError(400, Errcode.NotJson, error);
  }
  static invalidParam(error: string): MatrixError {
    return new MatrixError(400, Errcode.InvalidParam, error);
  }
  static missingParam(error: string): MatrixError {
    return new MatrixError(400, Errcode.MissingParam, error);
  }
  static unauthorized(error: string): MatrixError {
    return new MatrixError(401, Errcode.Unauthorized, error);
  }
  static forbidden(error: string): MatrixError {
    return new MatrixError(403, Errcode.Forbidden, error);
  }
  static notFound(error: string): MatrixError {
    return new MatrixError(404, Errcode.NotFound, error);
  }
  static unrecognized(error = 'Unrecognized request', status: 404 | 405 = 404): MatrixError {
    return new MatrixError(status, Errcode.Unrecognized, error);
  }
  static tooLarge(error = 'Request body too large'): MatrixError {
    return new MatrixError(413, Errcode.TooLarge, error);
  }
  static limitExceeded(retryAfterMs?: number, error = 'Too many requests'): MatrixError {
    return new MatrixError(429, Errcode.LimitExceeded, error, retryAfterMs === undefined ? undefined : { retry_after_ms: retryAfterMs });
  }
  static unknown(error = 'Internal server error', status = 500): MatrixError {
    return new MatrixError(status, Errcode.Unknown, error);
  }
}
