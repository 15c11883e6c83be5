// Issue 19 (`/version` p99 during a fan-out): the store and the embedded bus answer without a turn of the event loop,
// so a destination's step (its item queued, its transaction prepared and its request started: signing, a TLS
// connection, the write; its answer recorded and settled) runs start to finish on promise continuations. A
// `setImmediate` per step did not spread them: every step waiting at the same time resumed in the same turn (up to
// ~40 of them with 16 destination partitions, ~2 ms each on the gateway), and a listener waited behind all of them.

/** Lets at most `perTurn` waiting steps go per turn of the event loop, first come first served. */
export class TurnPacer {
  private waiting: Array<() => void> = [];
  private scheduled = false;

  constructor(private readonly perTurn: number) {
    if (!Number.isInteger(perTurn) || perTurn < 1) throw new Error(`steps per turn must be a positive integer, not ${perTurn}`);
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
    // Armed from within an immediate, this runs in the next turn, after the poll phase: I/O goes between two batches.
    setImmediate(() => this.release());
  }

  private release(): void {
    this.scheduled = false;
    // Each step runs to its next real wait in the microtasks after this callback: that is this turn's share.
    for (const go of this.waiting.splice(0, this.perTurn)) go();
    if (this.waiting.length > 0) this.schedule();
  }
}
