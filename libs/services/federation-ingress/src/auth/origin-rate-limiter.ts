// Per-origin inbound rate limits for federation requests, in the spirit of Synapse's `rc_federation`: past
// `sleepLimit` requests in a `windowMs` window an origin's requests are slowed by `sleepDelayMs`; at most
// `concurrent` of them run at once, the rest queue; with more than `rejectLimit` waiting, new ones are refused
// (429 with retry_after_ms). Per process: with N ingress replicas an origin gets up to N times the budget.

export interface RateLimitSettings {
  windowMs: number;
  sleepLimit: number;
  sleepDelayMs: number;
  rejectLimit: number;
  concurrent: number;
}

/** Synapse's documented `rc_federation` defaults. */
export const DEFAULT_RATE_LIMIT: RateLimitSettings = { windowMs: 1_000, sleepLimit: 10, sleepDelayMs: 500, rejectLimit: 50, concurrent: 3 };

export type RateLimitOutcome = 'rejected' | 'slowed' | 'queued';

export class OriginRateLimited extends Error {
  constructor(readonly retryAfterMs: number) {
    super('Too many requests from this server');
  }
}

interface OriginState {
  /** Request start times within the current window. */
  times: number[];
  running: number;
  sleeping: number;
  /** Requests waiting for a running slot; each is handed the slot of a finished one. */
  waiting: Array<() => void>;
}

export interface RateLimiterHooks {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Called whenever a limit bites (for the metric). */
  onLimit?: (outcome: RateLimitOutcome) => void;
  /** Origins tracked at most; idle ones are forgotten first. */
  maxOrigins?: number;
}

export class OriginRateLimiter {
  private readonly origins = new Map<string, OriginState>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxOrigins: number;

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly hooks: RateLimiterHooks = {},
  ) {
    this.now = hooks.now ?? Date.now;
    this.sleep = hooks.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.maxOrigins = hooks.maxOrigins ?? 10_000;
  }

  get trackedOrigins(): number {
    return this.origins.size;
  }

  /** Requests of `origin` delayed or queued now. */
  waiting(origin: string): number {
    const state = this.origins.get(origin);
    return state ? state.waiting.length + state.sleeping : 0;
  }

  /** Waits until a request from `origin` may run; call the returned function when it is done. */
  async enter(origin: string): Promise<() => void> {
    const { windowMs, sleepLimit, sleepDelayMs, rejectLimit, concurrent } = this.settings;
    const state = this.stateOf(origin);
    const now = this.now();
    state.times = state.times.filter((t) => now - t < windowMs);
    if (state.waiting.length + state.sleeping > rejectLimit) {
      this.hooks.onLimit?.('rejected');
      throw new OriginRateLimited(Math.ceil(windowMs / sleepLimit));
    }
    state.times.push(now);
    if (state.times.length > sleepLimit) {
      this.hooks.onLimit?.('slowed');
      state.sleeping++;
      try {
        await this.sleep(sleepDelayMs);
      } finally {
        state.sleeping--;
      }
    }
    if (state.running >= concurrent) {
      this.hooks.onLimit?.('queued');
      await new Promise<void>((resolve) => state.waiting.push(resolve));
    } else {
      state.running++;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = state.waiting.shift();
      if (next) next();
      else state.running--;
    };
  }

  private stateOf(origin: string): OriginState {
    let state = this.origins.get(origin);
    if (state) {
      // Most recently used last, so eviction looks at the least recent first.
      this.origins.delete(origin);
      this.origins.set(origin, state);
      return state;
    }
    state = { times: [], running: 0, sleeping: 0, waiting: [] };
    this.origins.set(origin, state);
    if (this.origins.size > this.maxOrigins) this.forgetIdle();
    return state;
  }

  private forgetIdle(): void {
    for (const [origin, state] of this.origins) {
      if (this.origins.size <= this.maxOrigins) return;
      if (state.running === 0 && state.sleeping === 0 && state.waiting.length === 0) this.origins.delete(origin);
    }
  }
}
