// Issue 19, peak RSS under a backlog: V8 let the old generation grow to ~4× its live size before collecting, so a
// burst of 5,000 PDUs took the embedded gateway from 140 to 290 MiB. Each service now fixes the growing factor.
import { spawnSync } from 'node:child_process';
import { defaultSettings } from '@fedgate/config';
import { limitHeapGrowth } from './heap-growth';

const defaultPercent = () => (defaultSettings().memory as { heapGrowingPercent: number }).heapGrowingPercent;

/** Keeps 200,000 objects live and churns objects that live long enough to be promoted; prints the largest old space. */
const CHURN = `
const v8 = require('node:v8');
if (process.argv[1]) v8.setFlagsFromString(process.argv[1]);
const live = Array.from({ length: 200000 }, (_, i) => ({ i, s: 'live' + i }));
const ring = new Array(60000);
let max = 0;
for (let i = 0; i < 4e6; i++) {
  ring[i % 60000] = { i, s: 'x' + i, a: [i, i + 1] };
  if (i % 50000 === 0) max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_size);
}
process.stdout.write(String(live.length > 0 ? max : 0));`;

function largestOldSpaceBytes(flags: string | undefined): number {
  const result = spawnSync(process.execPath, ['--max-semi-space-size=4', '-e', CHURN, ...(flags ? [flags] : [])], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  if (result.status !== 0) throw new Error(`node exited ${result.status}: ${result.stderr}`);
  return Number(result.stdout);
}

describe('limitHeapGrowth (issue 19: old generation grown to 4× its live size under a backlog)', () => {
  it('sets V8’s growing factor from the percent, and leaves V8’s own for 0', () => {
    const set: string[] = [];
    expect(limitHeapGrowth(30, (flags) => set.push(flags))).toBe('--heap-growing-percent=30');
    expect(limitHeapGrowth(0, (flags) => set.push(flags))).toBeUndefined();
    expect(set).toEqual(['--heap-growing-percent=30']);
  });

  it('is on by default (30 %)', () => {
    expect(defaultPercent()).toBe(30);
  });

  it('keeps the old generation of a process churning promoted garbage well below what V8 grows it to by itself', () => {
    let flags: string | undefined;
    limitHeapGrowth(defaultPercent(), (f) => (flags = f));
    const unlimited = largestOldSpaceBytes(undefined);
    const limited = largestOldSpaceBytes(flags);
    // Seen: 111 MiB unlimited, 54 MiB limited, for ~20 MiB live.
    expect(limited).toBeLessThan(0.7 * unlimited);
  }, 60_000);
});
