// How a delivery ends, shared by both adapters so they behave the same.
import type { HandlerOutcome } from './bus';

export type Settlement = { kind: 'ack' } | { kind: 'nak'; delayMs: number } | { kind: 'notOwned'; delayMs: number } | { kind: 'dead'; reason: string };

/** A message not owned comes back no sooner than this: unlike a nak, nothing else bounds how often. */
export const MIN_NOT_OWNED_DELAY_MS = 20;

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
    // Lease trouble, not the message's: never uses up its deliveries, so it must not spin either.
    if (outcome.kind === 'notOwned') return { kind: 'notOwned', delayMs: Math.max(MIN_NOT_OWNED_DELAY_MS, outcome.delayMs) };
    retry = { delayMs: outcome.delayMs, reason: 'handler asked for redelivery' };
  }
  if (deliveryCount >= maxDeliver) return { kind: 'dead', reason: `max deliveries (${maxDeliver}) reached; last: ${retry.reason}` };
  return { kind: 'nak', delayMs: retry.delayMs };
}
