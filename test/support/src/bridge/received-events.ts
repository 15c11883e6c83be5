export type ReceivedKind = 'event' | 'ephemeral' | 'to_device' | 'device_lists' | 'key_counts';

export interface ReceivedEvent {
  kind: ReceivedKind;
  /** The event as the homeserver pushed it (client format). */
  event: Record<string, any>;
  receivedAt: number;
  /** The AS transaction that carried it, when it came in one. */
  txnId?: string;
}

/** One `PUT /transactions/{txnId}` the bridge was sent, whether or not its library took it. */
export interface ReceivedTransaction {
  txnId: string;
  receivedAt: number;
  eventIds: string[];
  /** The bridge library skipped it: its txnId was the last one the library processed (a retry). */
  skippedAsRetry: boolean;
}

interface Waiter {
  predicate: (received: ReceivedEvent) => boolean;
  resolve: (received: ReceivedEvent) => void;
}

/** Everything the bridge was pushed, in arrival order; tests query it or wait for a match. */
export class ReceivedEvents {
  private readonly log: ReceivedEvent[] = [];
  /** Every transaction the homeserver sent, in arrival order (retries included): what a duplicate is read against. */
  readonly transactions: ReceivedTransaction[] = [];
  private waiters: Waiter[] = [];

  record(kind: ReceivedKind, event: Record<string, any>, txnId?: string): void {
    const received: ReceivedEvent = { kind, event, receivedAt: Date.now(), ...(txnId === undefined ? {} : { txnId }) };
    this.log.push(received);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.predicate(received)) return true;
      waiter.resolve(received);
      return false;
    });
  }

  all(): readonly ReceivedEvent[] {
    return this.log;
  }

  events(predicate: (event: Record<string, any>) => boolean = () => true): Record<string, any>[] {
    return this.log.filter((r) => r.kind === 'event' && predicate(r.event)).map((r) => r.event);
  }

  /** Every record of a room event with this event ID (more than one: it reached the bridge twice). */
  recordsOf(eventId: string): ReceivedEvent[] {
    return this.log.filter((r) => r.kind === 'event' && r.event.event_id === eventId);
  }

  /**
   * How an event came twice, for a failure message: each record's transaction and time, and every time those
   * transactions arrived (a retry of one transaction after another one, or the event in two transactions).
   */
  describeDuplicate(eventId: string): string {
    const records = this.recordsOf(eventId);
    const txnIds = [...new Set(records.map((r) => r.txnId ?? '?'))];
    const lines = records.map((r, i) => `  record ${i + 1}: txn ${r.txnId ?? '?'} at ${new Date(r.receivedAt).toISOString()}`);
    for (const txnId of txnIds) {
      const arrivals = this.transactions.filter((t) => t.txnId === txnId);
      lines.push(
        `  txn ${txnId}: arrived ${arrivals.length}× (${arrivals.map((t) => `${new Date(t.receivedAt).toISOString()}${t.skippedAsRetry ? ' skipped as retry' : ''}, ${t.eventIds.length} events`).join('; ')})`,
      );
    }
    const order = this.transactions.map((t) => t.txnId);
    const around = order.flatMap((txnId, i) => (txnIds.includes(txnId) ? [i] : []));
    if (around.length > 0) lines.push(`  transactions in arrival order around them: ${order.slice(Math.max(0, around[0]! - 2), around[around.length - 1]! + 3).join(', ')}`);
    const verdict = txnIds.length > 1 ? 'the event came in two different transactions' : 'the same transaction was taken twice (re-sent after another one)';
    return `${eventId} reached the bridge ${records.length}×: ${verdict}\n${lines.join('\n')}`;
  }

  ephemeral(predicate: (event: Record<string, any>) => boolean = () => true): Record<string, any>[] {
    return this.log.filter((r) => r.kind === 'ephemeral' && predicate(r.event)).map((r) => r.event);
  }

  /**
   * The first room event (received already or later) matching `predicate`; rejects after
   * `timeoutMs` listing what did arrive, so a failing test shows what the bridge saw instead.
   */
  waitForEvent(predicate: (event: Record<string, any>) => boolean, timeoutMs = 10_000): Promise<Record<string, any>> {
    return this.waitFor((r) => r.kind === 'event' && predicate(r.event), timeoutMs).then((r) => r.event);
  }

  waitForEphemeral(predicate: (event: Record<string, any>) => boolean, timeoutMs = 10_000): Promise<Record<string, any>> {
    return this.waitFor((r) => r.kind === 'ephemeral' && predicate(r.event), timeoutMs).then((r) => r.event);
  }

  /** Any record (of any kind) matching, received already or later. */
  waitForRecord(predicate: (received: ReceivedEvent) => boolean, timeoutMs = 10_000): Promise<ReceivedEvent> {
    return this.waitFor(predicate, timeoutMs);
  }

  waitForToDevice(predicate: (message: Record<string, any>) => boolean, timeoutMs = 10_000): Promise<Record<string, any>> {
    return this.waitFor((r) => r.kind === 'to_device' && predicate(r.event), timeoutMs).then((r) => r.event);
  }

  private waitFor(predicate: (received: ReceivedEvent) => boolean, timeoutMs: number): Promise<ReceivedEvent> {
    const already = this.log.find(predicate);
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (received) => {
          clearTimeout(timer);
          resolve(received);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        const seen = this.log.map((r) => `${r.kind} ${r.event.type} ${r.event.event_id ?? ''} in ${r.event.room_id ?? '-'}`);
        reject(new Error(`no matching event within ${timeoutMs} ms; received ${seen.length}:\n${seen.join('\n')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}
