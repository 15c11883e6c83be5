// How both adapters fill an application service's next transaction from its queue.
import type { JsonObject } from '@fedgate/protocol';
import type { AppServiceTransaction } from '../ports/chat';

export interface QueuedAppServiceItem {
  seq: number;
  kind: string;
  /** The item's JSON as stored. */
  event: string;
}

/**
 * Fills transaction `txnId` from `items` (in queue order) up to the limits, stopping at the first item that
 * does not fit so items always leave in enqueue order. Null when nothing fits (an empty queue).
 */
export function fillAppServiceTransaction(
  txnId: string,
  items: readonly QueuedAppServiceItem[],
  limits: { maxEvents: number; maxEphemeral: number },
): { transaction: AppServiceTransaction; lastSeq: number } | null {
  const transaction: AppServiceTransaction = { txnId, events: [], ephemeral: [] };
  let lastSeq = 0;
  const toDevice: JsonObject[] = [];
  for (const item of items) {
    const isEvent = item.kind === 'event';
    const target = isEvent ? transaction.events : item.kind === 'to_device' ? toDevice : transaction.ephemeral;
    if (target.length >= (isEvent ? limits.maxEvents : limits.maxEphemeral)) break;
    target.push(JSON.parse(item.event));
    lastSeq = item.seq;
  }
  if (toDevice.length > 0) transaction.toDevice = toDevice;
  return lastSeq === 0 ? null : { transaction, lastSeq };
}
