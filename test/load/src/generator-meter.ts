// The load generator's own use of the machine during a measured window: its CPU seconds, and how busy its main thread
// was (event-loop utilisation, 0–1) over the window and in its busiest 100 ms, and its busiest worker thread's. Near 1, the generator's thread queued
// the target's requests and the window measured the generator as much as the target.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export interface GeneratorUse {
  cpuSeconds: number;
  /** Event-loop utilisation of the generator's main thread over the window. */
  mainThreadBusy: number;
  /** The same in the busiest 100 ms of the window. */
  mainThreadBusiest100Ms: number;
  /** The busiest worker thread's utilisation over the window, when simulated servers answer from workers. */
  busiestWorkerThread?: number;
}

/** A worker thread whose event-loop utilisation can be read from the main thread. */
export interface MeteredThread {
  eventLoopUtilization(since?: EventLoopUtilization): EventLoopUtilization;
}

export function meterGenerator(workers: readonly MeteredThread[] = []): { stop(): GeneratorUse } {
  const cpu = process.cpuUsage();
  const workersAtStart = workers.map((worker) => worker.eventLoopUtilization());
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
      const use: GeneratorUse = { cpuSeconds: (used.user + used.system) / 1e6, mainThreadBusy: performance.eventLoopUtilization(start).utilization, mainThreadBusiest100Ms: busiest };
      if (workers.length > 0) use.busiestWorkerThread = Math.max(...workers.map((worker, i) => worker.eventLoopUtilization(workersAtStart[i]).utilization));
      return use;
    },
  };
}
