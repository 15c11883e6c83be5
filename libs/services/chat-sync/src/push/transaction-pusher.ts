import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { QueuedWorkTraces } from '@fedgate/telemetry';
import type { AppServiceRegistration } from '../registration';
import type { AppServiceClient, KeyCounts } from './app-service-client';
import { backoffDelayMs, defaultBackoff, type BackoffPolicy } from './backoff';
import type { JsonObject, PendingTransaction, QueuedItem, TransactionLimits, TransactionQueue } from './transaction-queue';

export interface DeliveryFailure {
  appServiceId: string;
  txnId: string;
  attempt: number;
  error: Error;
  retryInMs: number;
}

export interface DeliverySuccess {
  appServiceId: string;
  txnId: string;
  /** 1 when the first attempt was accepted. */
  attempts: number;
  /** How long the accepted attempt took, request to answer. */
  durationMs: number;
  events: number;
  ephemeral: number;
}

export interface TransactionPusherOptions {
  queue: TransactionQueue;
  client: AppServiceClient;
  registrations: readonly AppServiceRegistration[];
  backoff?: BackoffPolicy;
  limits?: TransactionLimits;
  random?: () => number;
  /** Awaited before the backoff wait; a hook that throws does not stop delivery. */
  onDeliveryFailure?: (failure: DeliveryFailure) => unknown;
  /** Awaited after the AS accepted a transaction, before the next one is opened. */
  onDelivered?: (success: DeliverySuccess) => unknown;
  /** MSC3202: the key counts of the users in a transaction, read once per transaction (registrations with msc3202 only). */
  keyCounts?: (registration: AppServiceRegistration, transaction: PendingTransaction) => Promise<KeyCounts>;
  /** Whether this process pushes to the AS now (elastic replicas: while it holds the AS's lease); default always. */
  mayPush?: (appServiceId: string) => boolean;
  /** When `mayPush` says no: resolves true as soon as it says yes again (a stale lease renewed), false if it will not. */
  untilMayPush?: (appServiceId: string) => Promise<boolean>;
  /** Our store failed under delivery (an outage): nothing is lost (the queue is in the store), delivery is tried again shortly. */
  onStoreFailure?: (appServiceId: string, error: unknown) => unknown;
}

/** Synapse sends at most 100 events and 100 ephemeral events per transaction. */
const defaultLimits: TransactionLimits = { maxEvents: 100, maxEphemeral: 100 };

interface Worker {
  registration: AppServiceRegistration;
  running: Promise<void> | null;
  /** Set when something was enqueued while the worker was already looking at the queue. */
  rescan: boolean;
  /** Cuts a backoff wait short (stop). */
  interruptWait: (() => void) | null;
  /** A pending look at whether this process may push to the AS again. */
  recheck?: NodeJS.Timeout | null;
}

/** How often a process that may not push to an AS (`mayPush`) looks again. */
const RECHECK_MS = 1_000;

/**
 * Pushes queued events to each application service: one transaction in flight per AS, retried
 * with the same txnId and exponential backoff until the AS accepts it, then the next, in order.
 */
export class TransactionPusher {
  private readonly workers = new Map<string, Worker>();
  private readonly backoff: BackoffPolicy;
  private readonly limits: TransactionLimits;
  private readonly random: () => number;
  /** The trace each queued event came with: the transaction carrying it joins it. */
  private readonly traces = new QueuedWorkTraces();
  /** Items of a bus run not in the queue yet, per service (`push` with `defer`). */
  private readonly held = new Map<string, QueuedItem[]>();
  private stopped = false;

  constructor(private readonly options: TransactionPusherOptions) {
    this.backoff = options.backoff ?? defaultBackoff;
    this.limits = options.limits ?? defaultLimits;
    this.random = options.random ?? Math.random;
    for (const registration of options.registrations) {
      // url: null means the AS wants no traffic at all.
      if (registration.url !== null) {
        this.workers.set(registration.id, { registration, running: null, rescan: false, interruptWait: null });
      }
    }
  }

  /** Resumes delivery of whatever the queue still holds from before (after a restart). */
  start(): void {
    for (const id of this.workers.keys()) this.wake(id);
  }

  /**
   * Enqueues an item (ephemeral and to-device ones only for services with `receive_ephemeral`, device-list ones only
   * with MSC3202) and wakes delivery. `defer` (more of the caller's bus run follows): the item is held until the
   * service's next push without it or `flushHeld`, so a run's items go to the queue in one write (issue 19).
   */
  async push(appServiceId: string, item: QueuedItem, options: { defer?: boolean } = {}): Promise<void> {
    const worker = this.workers.get(appServiceId);
    if (!worker) return;
    if (item.kind === 'device_list' ? !worker.registration.msc3202 : item.kind !== 'event' && !worker.registration.receiveEphemeral) return;
    if (item.id !== undefined) this.traces.remember(traceKey(appServiceId, item.id));
    const held = this.held.get(appServiceId);
    if (options.defer) {
      if (held) held.push(item);
      else this.held.set(appServiceId, [item]);
      return;
    }
    if (!held) {
      await this.options.queue.enqueue(appServiceId, item);
      this.wake(appServiceId);
      return;
    }
    held.push(item);
    await this.flushHeld(appServiceId);
  }

  /** Enqueues the items held for the service (every service: none named), in order; on failure they stay held. */
  async flushHeld(appServiceId?: string): Promise<void> {
    for (const id of appServiceId === undefined ? [...this.held.keys()] : [appServiceId]) {
      const items = this.held.get(id);
      if (!items) continue;
      this.held.delete(id);
      const { queue } = this.options;
      try {
        if (items.length > 1 && queue.enqueueMany) await queue.enqueueMany(id, items);
        else for (const item of items) await queue.enqueue(id, item);
      } catch (err) {
        // Queued twice if part went in: the queue dedupes by item ID.
        this.held.set(id, [...items, ...(this.held.get(id) ?? [])]);
        throw err;
      }
      this.wake(id);
    }
  }

  async pushEvent(appServiceId: string, event: JsonObject): Promise<void> {
    const worker = this.workers.get(appServiceId);
    if (!worker) return;
    await this.options.queue.enqueue(appServiceId, { kind: 'event', event });
    this.wake(appServiceId);
  }

  /** Ephemeral events only go to services that asked for them (`receive_ephemeral`). */
  async pushEphemeral(appServiceId: string, event: JsonObject): Promise<void> {
    const worker = this.workers.get(appServiceId);
    if (!worker || !worker.registration.receiveEphemeral) return;
    await this.options.queue.enqueue(appServiceId, { kind: 'ephemeral', event });
    this.wake(appServiceId);
  }

  wake(appServiceId: string): void {
    const worker = this.workers.get(appServiceId);
    if (!worker || this.stopped) return;
    if (!this.allowed(appServiceId)) {
      // Not ours now (another replica's, or our lease is stale for a moment): look again shortly, or as soon as
      // the lease is renewed (a second of idle pushing per stale moment otherwise, on a loaded store often).
      if (worker.recheck) return;
      const recheck = setTimeout(() => {
        worker.recheck = null;
        this.wake(appServiceId);
      }, RECHECK_MS);
      worker.recheck = recheck.unref();
      void this.options.untilMayPush?.(appServiceId).then(
        (ours) => {
          if (!ours || worker.recheck !== recheck) return;
          clearTimeout(recheck);
          worker.recheck = null;
          this.wake(appServiceId);
        },
        () => undefined,
      );
      return;
    }
    if (worker.running) {
      worker.rescan = true;
      return;
    }
    // Its own context: the loop outlives the message that woke it; each push joins its items' traces.
    // It opens its first transaction once the work now running on promise continuations is done (the bus consumer
    // feeding the queue hands on a run of events that way), so the run goes in one transaction instead of the first
    // alone and the rest after its answer (issue 19: 12–14 pushes per 50 events), without waiting for another turn
    // of the event loop. Later transactions open as soon as the previous one is answered, with everything queued by then.
    worker.running = context
      .with(ROOT_CONTEXT, () => afterThisBurst().then(() => this.drain(worker)))
      .catch(async (err: unknown) => {
        // A store outage must not end delivery (nor, unhandled, the process): look again shortly.
        await this.notify(() => this.options.onStoreFailure?.(appServiceId, err));
        if (this.stopped) return;
        worker.recheck ??= setTimeout(() => {
          worker.recheck = null;
          this.wake(appServiceId);
        }, RECHECK_MS);
        worker.recheck.unref();
      })
      .finally(() => {
        worker.running = null;
        if (worker.rescan && !this.stopped) this.wake(appServiceId);
      });
  }

  /**
   * This process no longer pushes to the AS (`mayPush` answers false already): resolves once its request in flight,
   * if any, has been answered, so the AS's lease is given back only then. Else the next owner could send the same
   * transaction and a newer one before the old request lands, and an AS that remembers only its last txnId would
   * take the old one again.
   */
  async release(appServiceId: string): Promise<void> {
    const worker = this.workers.get(appServiceId);
    if (!worker) return;
    worker.interruptWait?.();
    await worker.running;
  }

  /** Resolves once nothing is being delivered (the queue is empty or delivery was stopped). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.workers.values()].map((worker) => worker.running).filter((p): p is Promise<void> => p !== null);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  /** Stops after the requests in flight; undelivered transactions stay queued for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const worker of this.workers.values()) {
      worker.interruptWait?.();
      if (worker.recheck) clearTimeout(worker.recheck);
    }
    await this.idle();
  }

  private async drain(worker: Worker): Promise<void> {
    const { queue } = this.options;
    const id = worker.registration.id;
    while (!this.stopped) {
      worker.rescan = false;
      const transaction = await queue.openTransaction(id, this.limits);
      if (!transaction) return;
      let attempts = 0;
      let durationMs = 0;
      const traceKeys = transaction.events.flatMap((e) => (typeof e.event_id === 'string' ? [traceKey(id, e.event_id)] : []));
      const spanAttributes = { 'fedgate.appservice': id, 'fedgate.txn_id': transaction.txnId, 'fedgate.events': transaction.events.length, 'fedgate.ephemeral': transaction.ephemeral.length };
      let keyCounts: KeyCounts | undefined;
      for (let attempt = 1; ; attempt++) {
        if (this.stopped) return;
        // Not ours now: drop the transaction from memory (the owner sends it, same txnId, from the store) and look again.
        if (!this.allowed(id)) {
          worker.rescan = true;
          return;
        }
        const started = performance.now();
        try {
          if (worker.registration.msc3202 && this.options.keyCounts) keyCounts ??= await this.options.keyCounts(worker.registration, transaction);
          await this.traces.inSpanOf('appservice transaction', traceKeys, { ...spanAttributes, 'fedgate.attempt': attempt }, () =>
            this.options.client.sendTransaction(worker.registration, transaction, keyCounts),
          );
          attempts = attempt;
          durationMs = performance.now() - started;
          break;
        } catch (err) {
          const retryInMs = backoffDelayMs(this.backoff, attempt, this.random);
          await this.notify(() => this.options.onDeliveryFailure?.({ appServiceId: id, txnId: transaction.txnId, attempt, error: err as Error, retryInMs }));
          await this.wait(worker, retryInMs);
        }
      }
      await queue.ackTransaction(id, transaction.txnId);
      this.traces.forget(traceKeys);
      const success = { appServiceId: id, txnId: transaction.txnId, attempts, durationMs, events: transaction.events.length, ephemeral: transaction.ephemeral.length };
      await this.notify(() => this.options.onDelivered?.(success));
    }
  }

  private allowed(appServiceId: string): boolean {
    return this.options.mayPush?.(appServiceId) ?? true;
  }

  private async notify(hook: () => unknown): Promise<void> {
    try {
      await hook();
    } catch {
      // Observers (logs, metrics, audit) must not stall delivery; they report their own failures.
    }
  }

  private wait(worker: Worker, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        worker.interruptWait = null;
        resolve();
      }
      worker.interruptWait = done;
    });
  }
}

/** A tick queued from a promise continuation runs once the microtask queue is empty: after the current burst, in this turn. */
function afterThisBurst(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

function traceKey(appServiceId: string, itemId: string): string {
  return `${appServiceId}\n${itemId}`;
}
