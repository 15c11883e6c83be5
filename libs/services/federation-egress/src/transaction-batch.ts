import type { EgressEntry } from '@fedgate/bus';
import type { EgressQueueItem } from '@fedgate/store';

export interface TransactionBatch {
  /** Queue items in the transaction, in order; the transaction covers the queue up to the last one. */
  items: EgressQueueItem[];
  pduEventIds: string[];
  edus: Array<{ eduId: string; edu_type: string; content: Record<string, unknown> }>;
  upTo: number;
}

/** The longest prefix of `items` within the limits: order per destination is kept, so nothing is skipped over. */
export function takeBatch(items: EgressQueueItem[], maxPdus: number, maxEdus: number): TransactionBatch | undefined {
  const batch: TransactionBatch = { items: [], pduEventIds: [], edus: [], upTo: 0 };
  for (const item of items) {
    const entry = item.item as unknown as EgressEntry;
    if (entry.kind === 'pdu') {
      if (batch.pduEventIds.length >= maxPdus) break;
      batch.pduEventIds.push(entry.eventId);
    } else {
      if (batch.edus.length >= maxEdus) break;
      batch.edus.push({ eduId: entry.eduId, edu_type: entry.eduType, content: entry.content });
    }
    batch.items.push(item);
    batch.upTo = item.position;
  }
  return batch.items.length > 0 ? batch : undefined;
}
