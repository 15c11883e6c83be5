import { withHttpClientSpan } from '@fedgate/telemetry';
import type { AppServiceRegistration } from '../registration';
import type { PendingTransaction } from './transaction-queue';

export class AppServiceRequestError extends Error {
  constructor(
    readonly appServiceId: string,
    readonly status: number | null,
    readonly errcode: string | null,
    message: string,
  ) {
    super(message);
    this.name = 'AppServiceRequestError';
  }
}

/** user → device → algorithm → count, and user → device → algorithms with an unused fallback key. */
export interface KeyCounts {
  oneTimeKeys: Record<string, Record<string, Record<string, number>>>;
  unusedFallbackKeyTypes: Record<string, Record<string, string[]>>;
}

/**
 * MSC3202's transaction fields under the names Synapse sends (`org.matrix.msc3202.*`, the counts also as
 * `device_one_time_key_counts`, which older bridge libraries read) and under the MSC's stable names.
 */
export function msc3202Fields(transaction: PendingTransaction, keyCounts: KeyCounts | undefined): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (transaction.deviceLists) {
    fields['org.matrix.msc3202.device_lists'] = transaction.deviceLists;
    fields.device_lists = transaction.deviceLists;
  }
  if (keyCounts && Object.keys(keyCounts.oneTimeKeys).length > 0) {
    fields['org.matrix.msc3202.device_one_time_keys_count'] = keyCounts.oneTimeKeys;
    fields['org.matrix.msc3202.device_one_time_key_counts'] = keyCounts.oneTimeKeys;
    fields.device_one_time_keys_count = keyCounts.oneTimeKeys;
  }
  if (keyCounts && Object.keys(keyCounts.unusedFallbackKeyTypes).length > 0) {
    fields['org.matrix.msc3202.device_unused_fallback_key_types'] = keyCounts.unusedFallbackKeyTypes;
    fields.device_unused_fallback_key_types = keyCounts.unusedFallbackKeyTypes;
  }
  return fields;
}

export interface AppServiceClientOptions {
  requestTimeoutMs?: number;
  fetch?: typeof globalThis.fetch;
}

/**
 * The homeserver's side of the application service API: every request carries the hs_token as a
 * Bearer header (spec v1.4+). A registration with `legacyQueryAuth` also gets it as the legacy
 * `access_token` query parameter, alongside the header as the spec advises, for AS libraries that
 * read only the query (matrix-appservice before 1.0, which Rocket.Chat's bridge library ships).
 */
export class AppServiceClient {
  private readonly timeoutMs: number;
  private readonly fetch: typeof globalThis.fetch;

  constructor(options: AppServiceClientOptions = {}) {
    this.timeoutMs = options.requestTimeoutMs ?? 60_000;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /**
   * PUT /_matrix/app/v1/transactions/{txnId}; resolves once the AS answered 2xx. `keyCounts`: MSC3202's
   * one-time key counts and unused fallback key types of the users in the transaction, for registrations with it.
   */
  async sendTransaction(registration: AppServiceRegistration, transaction: PendingTransaction, keyCounts?: KeyCounts): Promise<void> {
    const body: Record<string, unknown> = { events: transaction.events };
    if (registration.receiveEphemeral) {
      // The stable name (spec v1.13) and the MSC2409 name older bridges still read.
      body.ephemeral = transaction.ephemeral;
      body['de.sorunome.msc2409.ephemeral'] = transaction.ephemeral;
      // To-device messages have no stable field yet: the MSC2409 name, as Synapse sends them.
      if (transaction.toDevice?.length) body['de.sorunome.msc2409.to_device'] = transaction.toDevice;
    }
    if (registration.msc3202) Object.assign(body, msc3202Fields(transaction, keyCounts));
    const response = await this.request(registration, 'PUT', `/transactions/${encodeURIComponent(transaction.txnId)}`, body, transaction.eventsJson === undefined ? undefined : withEventsText(body, transaction.eventsJson));
    if (!response.ok) throw await this.failure(registration, response, `transaction ${transaction.txnId}`);
  }

  /** GET /_matrix/app/v1/users/{userId}: whether the AS has (now) created the user. */
  async queryUser(registration: AppServiceRegistration, userId: string): Promise<boolean> {
    return this.exists(registration, `/users/${encodeURIComponent(userId)}`, `user query ${userId}`);
  }

  /** GET /_matrix/app/v1/rooms/{roomAlias}: whether the AS has (now) created a room for the alias. */
  async queryRoomAlias(registration: AppServiceRegistration, alias: string): Promise<boolean> {
    return this.exists(registration, `/rooms/${encodeURIComponent(alias)}`, `alias query ${alias}`);
  }

  /** POST /_matrix/app/v1/ping; resolves with the round-trip time. */
  async ping(registration: AppServiceRegistration, transactionId?: string): Promise<{ durationMs: number }> {
    const started = performance.now();
    const body = transactionId === undefined ? {} : { transaction_id: transactionId };
    const response = await this.request(registration, 'POST', '/ping', body);
    if (!response.ok) throw await this.failure(registration, response, 'ping');
    await response.arrayBuffer();
    return { durationMs: Math.round(performance.now() - started) };
  }

  private async exists(registration: AppServiceRegistration, path: string, what: string): Promise<boolean> {
    const response = await this.request(registration, 'GET', path);
    if (response.ok) {
      await response.arrayBuffer();
      return true;
    }
    if (response.status === 404) {
      await response.arrayBuffer();
      return false;
    }
    throw await this.failure(registration, response, what);
  }

  /** `bodyText`: `body` serialised already. */
  private async request(registration: AppServiceRegistration, method: string, path: string, body?: unknown, bodyText?: string): Promise<Response> {
    if (registration.url === null) {
      throw new AppServiceRequestError(registration.id, null, null, `${registration.id} has no url; it receives no traffic`);
    }
    const query = registration.legacyQueryAuth ? `?access_token=${encodeURIComponent(registration.hsToken)}` : '';
    const base = registration.url.replace(/\/+$/, '');
    const url = `${base}/_matrix/app/v1${path}${query}`;
    // The application service is the operator's own: it gets our trace context and may continue the trace.
    const headers: Record<string, string> = {
      authorization: `Bearer ${registration.hsToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    };
    const span = { method, route: `/_matrix/app/v1${appServiceRoute(path)}`, serverAddress: hostOf(base), attributes: { 'fedgate.appservice': registration.id }, propagateInto: headers };
    return withHttpClientSpan(
      span,
      async () => {
        try {
          return await this.fetch(url, { method, headers, body: body === undefined ? undefined : (bodyText ?? JSON.stringify(body)), signal: AbortSignal.timeout(this.timeoutMs) });
        } catch (err) {
          throw new AppServiceRequestError(registration.id, null, null, `${method} ${path} to ${registration.id} failed: ${(err as Error).message}`);
        }
      },
      (response) => response.status,
    );
  }

  private async failure(registration: AppServiceRegistration, response: Response, what: string): Promise<AppServiceRequestError> {
    let errcode: string | null = null;
    let error = '';
    try {
      const json = (await response.json()) as { errcode?: unknown; error?: unknown };
      // What the AS says ends up in logs, audit records and metric labels: bounded.
      if (typeof json.errcode === 'string') errcode = json.errcode.slice(0, 64);
      if (typeof json.error === 'string') error = json.error.slice(0, 256);
    } catch {
      // A body that is not JSON says nothing more than the status.
    }
    const detail = [errcode, error].filter(Boolean).join(' ');
    return new AppServiceRequestError(
      registration.id,
      response.status,
      errcode,
      `${what} to ${registration.id} answered ${response.status}${detail ? ` (${detail})` : ''}`,
    );
  }
}

/** `/transactions/{txnId}`, `/users/{userId}`, `/rooms/{roomAlias}`, `/ping`: the route without its ID. */
function appServiceRoute(path: string): string {
  const [, first, second] = path.split('/');
  return second === undefined ? `/${first}` : `/${first}/{id}`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid';
  }
}

/** JSON.stringify(body) (its `events` first), the events given as their JSON text: the queue's rows, not serialised again. */
function withEventsText(body: Record<string, unknown>, eventsJson: string): string {
  const { events: _events, ...rest } = body;
  const restText = JSON.stringify(rest);
  return restText === '{}' ? `{"events":${eventsJson}}` : `{"events":${eventsJson},${restText.slice(1)}`;
}
