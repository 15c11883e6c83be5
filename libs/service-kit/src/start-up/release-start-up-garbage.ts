// Start-up leaves garbage V8 keeps mapped: module loading and Nest's wiring grow the young generation to its
// maximum (2 × 8 MiB) and leave the old generation fragmented, and no memory-reducing collection follows while
// the process idles. One last-resort collection once everything is started gave the idle embedded gateway back
// ~25 MiB of RSS (133 → 108 MiB, issue 19), for ~0.4 s once before the ready line.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface GcOptions {
  type: 'major' | 'minor';
  execution: 'sync' | 'async';
  /** `last-resort`: V8's collection under memory pressure — collects until nothing more is freed, shrinks the young generation, compacts and gives the freed pages back. */
  flavor: 'regular' | 'last-resort';
}
export type GcFunction = (options?: GcOptions) => void;

/** V8's `gc`, without `--expose-gc` on the command line: the flag set here applies to the context made next, and is unset again. */
export function exposedGc(): GcFunction {
  const own = (globalThis as { gc?: GcFunction }).gc;
  if (own) return own;
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as GcFunction;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** One full, memory-reducing collection; for when start-up is done. */
export function releaseStartUpGarbage(gc: GcFunction = exposedGc()): void {
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
