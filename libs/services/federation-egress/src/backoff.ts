import type { EgressBackoffConfig } from '@fedgate/config';

/** Delay before the next attempt after `failures` consecutive failures (≥ 1): exponential, capped, jittered. */
export function retryDelayMs(failures: number, backoff: EgressBackoffConfig, random: () => number = Math.random): number {
  const exponential = backoff.initialMs * Math.pow(backoff.multiplier, Math.max(0, failures - 1));
  const capped = Math.min(backoff.maxMs, exponential);
  const factor = 1 + backoff.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(capped * factor));
}
