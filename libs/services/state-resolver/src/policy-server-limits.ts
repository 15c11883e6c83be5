// How long and how often this server waits on rooms' policy servers, and what it counts of them.
import { LRUCache } from 'lru-cache';
import { Counter, Registry } from 'prom-client';

export interface PolicySigningLimits {
  /** Longest one signing request may take. */
  timeoutMs: number;
  /** Requests per event, counting the first; only failures that may pass (timeouts, 5xx, unreachable) are retried. */
  attempts: number;
  /** Pause before a retry. */
  retryDelayMs: number;
}

/** For local events; fitted within the create-event command's timeout by `withinCommandTimeout`. */
export const DEFAULT_OUTBOUND_POLICY_LIMITS: PolicySigningLimits = { timeoutMs: 3_500, attempts: 2, retryDelayMs: 500 };

/**
 * Limits whose worst case (every attempt timing out) ends well before the command's own timeout (10 s for
 * create-event), so a policy server that never answers gives the client its 502 rather than a 504 and a retry.
 */
export function withinCommandTimeout(limits: PolicySigningLimits, commandTimeoutMs: number): PolicySigningLimits {
  const room = commandTimeoutMs * 0.8 - limits.retryDelayMs * (limits.attempts - 1);
  return { ...limits, timeoutMs: Math.max(1, Math.min(limits.timeoutMs, Math.floor(room / limits.attempts))) };
}

/**
 * Policy servers that lately left a signing request for a received event unanswered: further received events are
 * soft-failed without asking until `quietMs` has passed, so a silent policy server costs one timeout per quiet
 * period rather than one per event (a flood of unsigned events would otherwise hold the room's parked queue).
 */
export class UnansweringPolicyServers {
  private readonly servers: LRUCache<string, true>;

  constructor(
    readonly quietMs: number,
    max = 10_000,
  ) {
    this.servers = new LRUCache<string, true>({ max, ttl: quietMs });
  }

  mark(via: string): void {
    this.servers.set(via, true);
  }

  has(via: string): boolean {
    return this.servers.has(via);
  }
}

export const DEFAULT_INBOUND_QUIET_MS = 30_000;

/**
 * `fedgate_room_policy_server_events_total{event, outcome}`: events of ours (`ours`) and received ones (`received`)
 * in rooms using a policy server, by what came of the signature. Closed label sets only, never a server or room.
 */
export function policyServerEventsCounter(registry: Registry = new Registry()): Counter<'event' | 'outcome'> {
  const name = 'fedgate_room_policy_server_events_total';
  return (
    (registry.getSingleMetric(name) as Counter<'event' | 'outcome'> | undefined) ??
    new Counter({ name, help: "Events in rooms using a policy server, ours or received, by what came of the policy server's signature", labelNames: ['event', 'outcome'], registers: [registry] })
  );
}

/** For received events the spec asks for a new signature once; parked PDUs clamp it further to their budget. */
export const DEFAULT_INBOUND_POLICY_LIMITS: PolicySigningLimits = { timeoutMs: 10_000, attempts: 1, retryDelayMs: 0 };
