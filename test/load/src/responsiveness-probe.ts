// The gateway stays responsive (issue 19): its federation /version answer time, sampled every 250 ms from a
// simulated server while a workload runs.
import type { SimulatedHomeserver } from './simulated-homeserver';
import { percentile } from './stats';
import type { Target } from './targets';

/** Samples the target's federation /version answer time while a workload runs. */
export class ResponsivenessProbe {
  private readonly times: number[] = [];
  private running = true;
  private readonly done: Promise<void>;
  constructor(sim: SimulatedHomeserver, target: Target) {
    this.done = (async () => {
      while (this.running) {
        const started = performance.now();
        await sim.wire.request(target.serverName, 'GET', '/_matrix/federation/v1/version').catch(() => undefined);
        this.times.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
  }
  async stop(): Promise<{ p50?: number; p99?: number }> {
    this.running = false;
    await this.done;
    return { p50: percentile(this.times, 50), p99: percentile(this.times, 99) };
  }
}
