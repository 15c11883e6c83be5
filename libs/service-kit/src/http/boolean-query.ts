import { MatrixError } from './matrix-error';

/** A boolean query parameter (`suggested_only`, `allow_remote`): "true" or "false", absent is `absent`; anything else 400 M_INVALID_PARAM. */
export function parseBooleanFlag(value: unknown, name: string, absent = false): boolean {
  if (value === undefined) return absent;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw MatrixError.invalidParam(`${name} must be true or false`);
}
