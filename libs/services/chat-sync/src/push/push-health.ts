// Makes an application service that refuses or fails pushes visible to the operator: an error log with
// status and errcode, Prometheus counters and a failing gauge, an `out` audit record per failed attempt
// and one when delivery resumes. The newest of those audit records is the push state the AS ping
// reports, so any process (and any replica) sharing the store can answer it.
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AuditEntry, AuditRepository } from '@fedgate/store';
import { AppServiceRequestError } from './app-service-client';
import type { DeliveryFailure, DeliverySuccess } from './transaction-pusher';

/** Audit `destination` of everything pushed to an application service. */
export const appServiceAuditDestination = (appServiceId: string): string => `appservice:${appServiceId}`;

export interface PushState {
  state: 'ok' | 'failing';
  /** When the current failure streak was last seen (ms since epoch). */
  last_failure_ts?: number;
  txn_id?: string;
  attempt?: number;
  /** HTTP status the AS answered with; 0 when it did not answer. */
  last_status?: number;
  last_errcode?: string | null;
  last_error?: string;
  retry_in_ms?: number;
}

export interface PushHealthOptions {
  audit: AuditRepository;
  serverName: string;
  logger: Logger;
  registry?: Registry | null;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export class PushHealth {
  private readonly failures: Counter | null;
  private readonly failing: Gauge | null;
  private readonly duration: Histogram | null;
  private readonly pushedEvents: Counter | null;
  /** AS IDs whose newest outcome is a failure, as far as this process knows (seeded from the audit). */
  private readonly failingNow = new Map<string, boolean>();

  constructor(private readonly options: PushHealthOptions) {
    const registry = options.registry;
    this.failures = registry
      ? metric(registry, 'fedgate_appservice_push_failures_total', () => new Counter({ name: 'fedgate_appservice_push_failures_total', help: 'Application service transaction attempts that failed, by status and errcode (status 0: no answer)', labelNames: ['appservice', 'status', 'errcode'], registers: [registry] }))
      : null;
    this.failing = registry
      ? metric(registry, 'fedgate_appservice_push_failing', () => new Gauge({ name: 'fedgate_appservice_push_failing', help: '1 while the application service has not accepted the transaction at the head of its queue', labelNames: ['appservice'], registers: [registry] }))
      : null;
    this.duration = registry
      ? metric(registry, 'fedgate_appservice_push_duration_seconds', () => new Histogram({ name: 'fedgate_appservice_push_duration_seconds', help: 'Time the application service took to accept a transaction (the accepted attempt)', labelNames: ['appservice'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] }))
      : null;
    this.pushedEvents = registry
      ? metric(registry, 'fedgate_appservice_pushed_events_total', () => new Counter({ name: 'fedgate_appservice_pushed_events_total', help: 'Room events the application service accepted', labelNames: ['appservice'], registers: [registry] }))
      : null;
  }

  async failed(failure: DeliveryFailure): Promise<void> {
    const { status, errcode } = failure.error instanceof AppServiceRequestError ? failure.error : { status: null, errcode: null };
    const refused = status !== null && status >= 400 && status < 500;
    this.options.logger.error(
      { appService: failure.appServiceId, txnId: failure.txnId, attempt: failure.attempt, status: status ?? 0, errcode, retryInMs: failure.retryInMs, err: failure.error.message },
      refused ? 'application service refused a transaction; it stays queued and is retried' : 'application service transaction failed; it stays queued and is retried',
    );
    // Label values from the AS stay few: a made-up errcode would make a new series each time.
    const errcodeLabel = errcode === null ? '' : /^M_[A-Z_]{1,40}$/.test(errcode) ? errcode : 'other';
    this.failures?.inc({ appservice: failure.appServiceId, status: String(status ?? 0), errcode: errcodeLabel });
    this.failing?.set({ appservice: failure.appServiceId }, 1);
    this.failingNow.set(failure.appServiceId, true);
    await this.append({
      status: status ?? 0,
      outcome: refused ? 'rejected' : 'error',
      reason: errcode ?? (status === null ? 'unreachable' : `http_${status}`),
      appServiceId: failure.appServiceId,
      txnId: failure.txnId,
      details: { attempt: failure.attempt, retry_in_ms: failure.retryInMs, error: failure.error.message, errcode },
    });
  }

  async delivered(success: DeliverySuccess): Promise<void> {
    this.failing?.set({ appservice: success.appServiceId }, 0);
    this.duration?.observe({ appservice: success.appServiceId }, success.durationMs / 1000);
    this.pushedEvents?.inc({ appservice: success.appServiceId }, success.events);
    if (!(await this.wasFailing(success.appServiceId))) return;
    this.failingNow.set(success.appServiceId, false);
    this.options.logger.warn({ appService: success.appServiceId, txnId: success.txnId, attempts: success.attempts }, 'application service accepts transactions again; delivery resumed');
    await this.append({ status: 200, outcome: 'ok', reason: 'delivery_resumed', appServiceId: success.appServiceId, txnId: success.txnId, details: { attempts: success.attempts } });
  }

  private async wasFailing(appServiceId: string): Promise<boolean> {
    const known = this.failingNow.get(appServiceId);
    if (known !== undefined) return known;
    // First delivery since start: a failure streak may have been recorded before a restart.
    const state = await readPushState(this.options.audit, appServiceId);
    this.failingNow.set(appServiceId, state.state === 'failing');
    return state.state === 'failing';
  }

  private async append(entry: { status: number; outcome: AuditEntry['outcome']; reason: string; appServiceId: string; txnId: string; details: NonNullable<AuditEntry['details']> }): Promise<void> {
    try {
      await this.options.audit.append({
        direction: 'out',
        origin: this.options.serverName,
        destination: appServiceAuditDestination(entry.appServiceId),
        method: 'PUT',
        path: `/_matrix/app/v1/transactions/${encodeURIComponent(entry.txnId)}`,
        ts: Date.now(),
        durationMs: 0,
        status: entry.status,
        outcome: entry.outcome,
        reason: entry.reason,
        txnId: entry.txnId,
        details: entry.details,
      });
    } catch (err) {
      this.options.logger.error({ appService: entry.appServiceId, err: (err as Error).message }, 'could not write the application service push audit record');
    }
  }
}

/** The push state of one AS from its newest push audit record: failing until a delivery succeeded. */
export async function readPushState(audit: AuditRepository, appServiceId: string): Promise<PushState> {
  const [newest] = await audit.query({ direction: 'out', destination: appServiceAuditDestination(appServiceId), limit: 1 });
  if (!newest || newest.outcome === 'ok') return { state: 'ok' };
  const details = (newest.details ?? {}) as { attempt?: number; retry_in_ms?: number; error?: string; errcode?: string | null };
  return {
    state: 'failing',
    last_failure_ts: newest.ts,
    txn_id: newest.txnId,
    attempt: details.attempt,
    last_status: newest.status,
    last_errcode: details.errcode ?? null,
    last_error: details.error,
    retry_in_ms: details.retry_in_ms,
  };
}

/**
 * The state the ping reports, given the queue length: a failure record with nothing queued is stale (the
 * failing transaction's items leave the queue only when it is accepted; a crash between that and the
 * resumed record leaves the failure newest), so it reads ok.
 */
export function pushStateWithQueue(state: PushState, pending: number): PushState & { pending: number } {
  if (state.state === 'failing' && pending === 0) return { state: 'ok', pending };
  return { ...state, pending };
}
