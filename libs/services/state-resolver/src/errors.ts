// Errors the handlers turn into command replies or bus outcomes.
import type { CommandError } from '@fedgate/bus';

/** A refusal with the Matrix errcode and HTTP status the caller answers with. */
export class CommandRefusal extends Error {
  constructor(
    readonly errcode: string,
    message: string,
    readonly status: number,
    /** Extra fields of the Matrix error body (e.g. `retry_after_ms`). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CommandRefusal';
  }

  toReply(): CommandError {
    return { ...this.extra, ok: false, errcode: this.errcode, error: this.message, status: this.status };
  }
}

export const forbidden = (message: string) => new CommandRefusal('M_FORBIDDEN', message, 403);
export const notFound = (message: string) => new CommandRefusal('M_NOT_FOUND', message, 404);
export const badJson = (message: string) => new CommandRefusal('M_BAD_JSON', message, 400);

/** The state at some prev events is not known here yet: fetch it, then try again. */
export class MissingStateError extends Error {
  constructor(readonly eventIds: string[]) {
    super(`no state known at ${eventIds.join(', ')}`);
    this.name = 'MissingStateError';
  }
}

/** The message can never be handled (malformed, unknown room): dead-letter it with the reason. */
export class PoisonMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoisonMessageError';
  }
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
