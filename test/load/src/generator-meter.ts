// The load generator's own use of the machine during a measured window: its CPU seconds, and how busy its main thread
// was (event-loop utilisation, 0–1) over the window and in its busiest 100 ms. Near 1, the generator's thread queued
// the target's requests and the window measured the generator as much as the target.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export interface GeneratorUse {
  cpuSeconds: number;
  /** Event-loop utilisation of the generator's main thread over the window. */
  mainThreadBusy: number;
  /** The same in the busiest 100 ms of the window. */
  mainThreadBusiest100Ms: number;
}

export function meterGenerator(): { stop(): GeneratorUse } {
  const cpu = process.cpuUsage();
  const start: EventLoopUtilization = performance.eventLoopUtilization();
  let last = start;
  let busiest = 0;
  const sampler = setInterval(() => {
    const now = performance.eventLoopUtilization();
    busiest = Math.max(busiest, performance.eventLoopUtilization(now, last).utilization);
    last = now;
  }, 100);
  return {
    stop() {
      clearInterval(sampler);
      const used = process.cpuUsage(cpu);
      return { cpuSeconds: (used.user + used.system) / 1e6, mainThreadBusy: performance.eventLoopUtilization(start).utilization, mainThreadBusiest100Ms: busiest };
    },
  };
}
