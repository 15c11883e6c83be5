// Fetched events that failed verification are not used; the audit store keeps which and why.
import type { RefusedRemoteEvent } from '@fedgate/federation-client';
import type { Store } from '@fedgate/store';

export async function auditRefused(store: Store, serverName: string, remote: string, method: string, path: string, refused: readonly RefusedRemoteEvent[]): Promise<void> {
  if (refused.length === 0) return;
  await store.audit.append({
    direction: 'out',
    origin: serverName,
    destination: remote,
    method,
    path,
    ts: Date.now(),
    durationMs: 0,
    status: 200,
    outcome: 'rejected',
    reason: 'fetched_event_refused',
    details: { refused: refused.map((r) => ({ eventId: r.eventId ?? null, reason: r.reason })) },
  });
}
