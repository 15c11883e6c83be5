// Admin actions on the chat side go to the audit store, so an operator can see who did what and what
// became of each room: `audit.query({ reason: 'user_deactivated' | 'room_deleted' | ... })`.
import type { AuditOutcome, Store } from '@fedgate/store';
import type { JsonObject } from '@fedgate/protocol';
import type { ApplicationService } from '../registration';

export type LifecycleReason = 'user_deactivated' | 'room_deleted' | 'room_blocked';

export interface LifecycleAuditEntry {
  service: ApplicationService;
  serverName: string;
  method: string;
  path: string;
  status: number;
  outcome: AuditOutcome;
  reason: LifecycleReason;
  startedTs: number;
  details: JsonObject;
}

/** The audit `origin` of an application service's admin action (it is no server: the AS acts on this one). */
export const appServiceOrigin = (service: ApplicationService): string => `appservice:${service.id}`;

export async function auditLifecycle(store: Store, entry: LifecycleAuditEntry): Promise<void> {
  const now = Date.now();
  await store.audit.append({
    direction: 'in',
    origin: appServiceOrigin(entry.service),
    destination: entry.serverName,
    method: entry.method,
    path: entry.path,
    ts: now,
    durationMs: now - entry.startedTs,
    status: entry.status,
    outcome: entry.outcome,
    reason: entry.reason,
    details: entry.details,
  });
}
