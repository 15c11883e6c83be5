// V8 lets the old generation grow to up to 4× what was live after the last full collection before it collects
// again (the factor follows its GC speed, not the memory a gateway should take). Under a burst of inbound PDUs
// that is mostly promoted garbage: the embedded gateway's RSS went from 140 to 290 MiB and stayed there.
// `--heap-growing-percent` fixes the factor; it is not allowed in NODE_OPTIONS, so every service sets it itself
// at start, from config.memory (docs/operations.md, "Memory").
import { setFlagsFromString } from 'node:v8';

/** Sets V8's heap growing factor to 1 + percent/100; 0 leaves V8's own. Returns the flag set. */
export function limitHeapGrowth(percent: number, setFlags: (flags: string) => void = setFlagsFromString): string | undefined {
  if (!Number.isInteger(percent) || percent <= 0) return undefined;
  const flag = `--heap-growing-percent=${percent}`;
  setFlags(flag);
  return flag;
}
