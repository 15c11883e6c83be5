// Issue 19 (`/version` p99 during a fan-out): the store and the embedded bus answer without a turn of the event loop,
// so a destination's step (its item queued, its transaction prepared and its request started: signing, a TLS
// connection, the write; its answer recorded and settled) runs start to finish on promise continuations. A
// `setImmediate` per step did not spread them: every step waiting at the same time resumed in the same turn (up to
// ~40 of them with 16 destination partitions, ~2 ms each on the gateway), and a listener waited behind all of them.
// A fixed number of steps per turn spread them but cut the fan-out's throughput when the turns were long for other
// reasons (TLS handshakes completing, answers parsed, GC): what a turn may give egress is time, not a count.

export interface TurnPacerOptions {
  /** How long the steps of one turn may run together; the step that crosses it is the turn's last. */
  budgetMs: number;
  /** At most this many steps a turn however cheap they are (default: no limit but the budget). */
  maxPerTurn?: number;
  /** The clock the budget is measured with (tests: a fake one). */
  now?: () => number;
}

/** Lets waiting steps go one after another, first come first served, while the turn's budget lasts; the rest wait for the next turn. */
export class TurnPacer {
  private waiting: Array<() => void> = [];
  private scheduled = false;
  private turnStartedAt = 0;
  private wentThisTurn = 0;
  private readonly budgetMs: number;
  private readonly maxPerTurn: number;
  private readonly now: () => number;

  constructor(options: TurnPacerOptions) {
    if (!(options.budgetMs > 0)) throw new Error(`a turn's budget must be positive, not ${options.budgetMs}`);
    this.budgetMs = options.budgetMs;
    this.maxPerTurn = options.maxPerTurn ?? Number.POSITIVE_INFINITY;
    this.now = options.now ?? (() => performance.now());
  }

  /** Resolves in a later turn, once the steps that waited before have gone. */
  next(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  /** Steps waiting for their turn (for tests and gauges). */
  get pending(): number {
    return this.waiting.length;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // Armed from within an immediate, this runs in the next turn, after the poll phase: I/O goes between two turns' steps.
    setImmediate(() => {
      this.turnStartedAt = this.now();
      this.wentThisTurn = 0;
      this.letNextGo();
    });
  }

  private letNextGo(): void {
    const go = this.waiting.shift();
    if (!go) {
      this.scheduled = false;
      return;
    }
    this.wentThisTurn++;
    // From a microtask, a tick runs once the microtask queue is empty: once the step reached a real wait (a socket,
    // a timer). Queued from an immediate or a tick, it would run before the step.
    queueMicrotask(() => {
      go();
      process.nextTick(() => this.afterOne());
    });
  }

  private afterOne(): void {
    if (this.waiting.length > 0 && this.wentThisTurn < this.maxPerTurn && this.now() - this.turnStartedAt < this.budgetMs) return this.letNextGo();
    this.scheduled = false;
    if (this.waiting.length > 0) this.schedule();
  }
}
