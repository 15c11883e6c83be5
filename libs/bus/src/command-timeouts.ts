// Which timeout a request waits: the one the caller gives, else its command's declared one.
import type { BusOptions } from './bus';
import { subjectMatches } from './partition';

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export function requestTimeoutMs(options: Pick<BusOptions, 'commands' | 'defaultRequestTimeoutMs'>, subject: string, explicitMs?: number): number {
  if (explicitMs !== undefined) return explicitMs;
  const command = options.commands?.find((c) => subjectMatches(c.pattern, subject));
  return command?.timeoutMs ?? options.defaultRequestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
}
