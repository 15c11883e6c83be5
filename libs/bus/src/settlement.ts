// How a delivery ends, shared by both adapters so they behave the same.
import type { HandlerOutcome } from './bus';

export type Settlement = { kind: 'ack' } | { kind: 'nak'; delayMs: number } | { kind: 'dead'; reason: string };

export const defaultRetryDelayMs = (deliveryCount: number): number => Math.min(30_000, 100 * 2 ** Math.max(0, deliveryCount - 1));

/** A delivery beyond maxDeliver means earlier ones never settled (crash, ack timeout): do not run the handler again. */
export function exhaustedBeforeHandling(deliveryCount: number, maxDeliver: number): Settlement | undefined {
  if (deliveryCount <= maxDeliver) return undefined;
  return { kind: 'dead', reason: `delivered ${deliveryCount - 1} times without being settled (handler crash or ack timeout)` };
}

export function settle(
  result: { outcome: HandlerOutcome | void } | { error: unknown },
  deliveryCount: number,
  maxDeliver: number,
  retryDelayMs: (deliveryCount: number) => number = defaultRetryDelayMs,
): Settlement {
  let retry: { delayMs: number; reason: string };
  if ('error' in result) {
    const message = result.error instanceof Error ? result.error.message : String(result.error);
    retry = { delayMs: retryDelayMs(deliveryCount), reason: `handler threw: ${message}` };
  } else {
    const outcome = result.outcome ?? { kind: 'ack' };
    if (outcome.kind === 'ack') return outcome;
    if (outcome.kind === 'term') return { kind: 'dead', reason: `handler terminated: ${outcome.reason}` };
    retry = { delayMs: outcome.delayMs, reason: 'handler asked for redelivery' };
  }
  if (deliveryCount >= maxDeliver) return { kind: 'dead', reason: `max deliveries (${maxDeliver}) reached; last: ${retry.reason}` };
  return { kind: 'nak', delayMs: retry.delayMs };
}
