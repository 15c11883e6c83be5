export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

export const defaultBackoff: BackoffPolicy = { initialDelayMs: 1_000, maxDelayMs: 5 * 60_000 };

/**
 * Delay before retry `attempt` (1 = first retry): doubling from the initial delay up to the cap,
 * then jittered into [half, full] so many gateways recovering at once do not hit an AS in step.
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(attempt - 1, 30);
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
