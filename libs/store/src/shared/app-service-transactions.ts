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
): { transaction: AppServiceTransaction; lastSeq: number; eventsJson: string } | null {
  const transaction: AppServiceTransaction = { txnId, events: [], ephemeral: [] };
  // The room events' text as stored (each one JSON.stringify's output): `events` serialised, without serialising it again.
  const eventTexts: string[] = [];
  let lastSeq = 0;
  const toDevice: JsonObject[] = [];
  const changed = new Set<string>();
  const left = new Set<string>();
  for (const item of items) {
    if (item.kind === 'device_list') {
      // A user's latest word wins: changed after left (they share a room again), or left after changed.
      const { user_id: userId, left: hasLeft } = JSON.parse(item.event) as { user_id: string; left?: boolean };
      (hasLeft ? changed : left).delete(userId);
      (hasLeft ? left : changed).add(userId);
      lastSeq = item.seq;
      continue;
    }
    const isEvent = item.kind === 'event';
    const target = isEvent ? transaction.events : item.kind === 'to_device' ? toDevice : transaction.ephemeral;
    if (target.length >= (isEvent ? limits.maxEvents : limits.maxEphemeral)) break;
    target.push(JSON.parse(item.event));
    if (isEvent) eventTexts.push(item.event);
    lastSeq = item.seq;
  }
  if (toDevice.length > 0) transaction.toDevice = toDevice;
  if (changed.size + left.size > 0) transaction.deviceLists = { changed: [...changed].sort(), left: [...left].sort() };
  return lastSeq === 0 ? null : { transaction, lastSeq, eventsJson: `[${eventTexts.join(',')}]` };
}

/** JSON.stringify(transaction), its events given as their JSON text (issue 19: the queue rows' text, not serialised again). */
export function appServiceTransactionJson(transaction: AppServiceTransaction, eventsJson: string): string {
  const { txnId, events: _events, ...rest } = transaction;
  return `${JSON.stringify({ txnId }).slice(0, -1)},"events":${eventsJson},${JSON.stringify(rest).slice(1)}`;
}

/**
 * Gives an open transaction the JSON text of its `events` (`AppServiceTransaction.eventsJson`), not enumerable: it
 * is no field of the transaction (nothing stores or compares it), only a serialisation of one the push may send as is.
 */
export function withEventsJson(transaction: AppServiceTransaction, eventsJson: string): AppServiceTransaction {
  return Object.defineProperty(transaction, 'eventsJson', { value: eventsJson, enumerable: false, writable: false });
}
