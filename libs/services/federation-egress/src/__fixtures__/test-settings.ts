import type { EgressSettings } from '../egress-settings';

/** Egress settings for tests: short backoff and polling, one replica. */
export const testEgressSettings: EgressSettings = {
  backoff: { initialMs: 20, multiplier: 2, maxMs: 200, jitter: 0.2 },
  requestTimeoutMs: 5_000,
  maxPdusPerTransaction: 50,
  maxEdusPerTransaction: 100,
  typingTtlMs: 30_000,
  catchUpAfterMs: 24 * 60 * 60_000,
  catchUpQueueLimit: 100_000,
  wakePollMs: 50,
  replicaIndex: 0,
  replicaCount: 1,
};

/** A federation client whose every PUT succeeds a turn of the event loop later; records the destinations in order. */
export function deliveringClient(): { client: { putJson(destination: string): Promise<{ status: number; body: unknown }> }; delivered: string[] } {
  const delivered: string[] = [];
  const client = {
    putJson: async (destination: string) => {
      await new Promise((resolve) => setImmediate(resolve));
      delivered.push(destination);
      return { status: 200, body: { pdus: {} } };
    },
  };
  return { client, delivered };
}
