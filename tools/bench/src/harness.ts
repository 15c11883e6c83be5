// What a benchmark suite is, and the measuring helpers every suite shares.
// Suites live in tools/bench/src/suites/*.bench.ts and are found by file name; each default-exports a BenchSuite.

export interface BenchRow {
  name: string;
  value: string;
  note?: string;
}

export interface BenchTarget {
  description: string;
  met: boolean;
  measured: string;
}

export interface BenchSection {
  title: string;
  rows: BenchRow[];
  targets?: BenchTarget[];
  notes?: string[];
}

export interface BenchSuite {
  name: string;
  /** Suites that need services (NATS, MongoDB) start them through @fedgate/testing. */
  run(): Promise<BenchSection[]>;
}

export interface Rate {
  opsPerSec: number;
  nsPerOp: number;
  iterations: number;
}

/** Runs `fn` in batches until `minMs` has passed (after a warm-up) and reports the rate. */
export function measureRate(fn: () => unknown, minMs = 1000, batch = 100): Rate {
  const warmUntil = performance.now() + Math.min(200, minMs / 5);
  while (performance.now() < warmUntil) for (let i = 0; i < batch; i++) fn();
  let iterations = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMs) {
    for (let i = 0; i < batch; i++) fn();
    iterations += batch;
    now = performance.now();
  }
  const ms = now - start;
  return { opsPerSec: (iterations / ms) * 1000, nsPerOp: (ms * 1e6) / iterations, iterations };
}

export async function measureOnce<T>(fn: () => T | Promise<T>): Promise<{ ms: number; result: T; peakRssDeltaMb: number; heapDeltaMb: number }> {
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  let peak = rss0;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const start = performance.now();
  const result = await fn();
  const ms = performance.now() - start;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { ms, result, peakRssDeltaMb: (peak - rss0) / 2 ** 20, heapDeltaMb: (process.memoryUsage().heapUsed - heap0) / 2 ** 20 };
}

export function percentile(sortedAscending: number[], p: number): number {
  if (sortedAscending.length === 0) return NaN;
  const i = Math.min(sortedAscending.length - 1, Math.max(0, Math.ceil((p / 100) * sortedAscending.length) - 1));
  return sortedAscending[i];
}

export const fmt = {
  rate: (r: Rate) => `${Math.round(r.opsPerSec).toLocaleString('en-US')} ops/s (${r.nsPerOp.toFixed(0)} ns/op)`,
  ms: (ms: number) => `${ms.toFixed(1)} ms`,
  mb: (mb: number) => `${mb.toFixed(1)} MiB`,
};
