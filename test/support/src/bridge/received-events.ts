export type ReceivedKind = 'event' | 'ephemeral' | 'to_device' | 'device_lists' | 'key_counts';

export interface ReceivedEvent {
  kind: ReceivedKind;
  /** The event as the homeserver pushed it (client format). */
  event: Record<string, any>;
  receivedAt: number;
}

interface Waiter {
  predicate: (received: ReceivedEvent) => boolean;
  resolve: (received: ReceivedEvent) => void;
}

/** Everything the bridge was pushed, in arrival order; tests query it or wait for a match. */
export class ReceivedEvents {
  private readonly log: ReceivedEvent[] = [];
  private waiters: Waiter[] = [];

  record(kind: ReceivedKind, event: Record<string, any>): void {
    const received = { kind, event, receivedAt: Date.now() };
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
