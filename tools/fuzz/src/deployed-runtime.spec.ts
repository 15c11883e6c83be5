// The memory bounds the image sets for every fedgate process (deploy/Dockerfile), which the fuzzer's gateway
// runs with too: without them the embedded gateway's RSS kept rising under `npm run fuzz` (V8's young
// generation sized from the host's memory, and glibc keeping freed request bodies in a heap it cannot shrink).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { deployedRuntimeSettings, withDeployedRuntime } from '@fedgate/testing';

/** Churns short-lived objects (what a busy gateway does) and prints the largest young generation V8 made. */
const CHURN = `
const v8 = require('node:v8');
let keep = [], max = 0;
for (let i = 0; i < 1.5e6; i++) {
  keep.push({ i, s: 'x' + i, a: [i, i + 1] });
  if (keep.length > 200000) keep = keep.slice(100000);
  if (i % 100000 === 0) max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
}
process.stdout.write(String(max));`;

function youngGenerationMaxBytes(env: NodeJS.ProcessEnv): number {
  const result = spawnSync(process.execPath, ['-e', CHURN], { env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`node exited ${result.status}: ${result.stderr}`);
  return Number(result.stdout);
}

describe('deployed runtime memory settings (RSS rising under the fuzzer)', () => {
  // Issue 19: 8 MiB (was 16) took ~12 MiB off the idle embedded gateway (docs/operations.md, "Memory").
  it('the image sets an 8 MiB semi-space, two malloc arenas and a fixed 128 KiB mmap threshold', () => {
    expect(deployedRuntimeSettings()).toEqual({
      NODE_OPTIONS: '--max-semi-space-size=8',
      MALLOC_ARENA_MAX: '2',
      MALLOC_MMAP_THRESHOLD_: '131072',
      MALLOC_TRIM_THRESHOLD_: '131072',
    });
  });

  // The new space is its two 8 MiB semi-spaces plus, on some hosts, a few pages V8 holds during a
  // scavenge (1.5 MiB over seen in CI with 16 MiB ones); unbounded it is 64 MiB on a host of this memory.
  it('keeps the young generation of a process started with them near 2 × 8 MiB, whatever the host memory', () => {
    const { NODE_OPTIONS: _ignored, ...parent } = process.env;
    expect(youngGenerationMaxBytes(withDeployedRuntime(parent))).toBeLessThanOrEqual(20 * 2 ** 20);
  });

  it('npm start runs the gateway with the image’s settings (they are written in both places)', () => {
    const { scripts } = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const { NODE_OPTIONS: nodeOptions, ...malloc } = deployedRuntimeSettings();
    const start = scripts.start!.slice(scripts.start!.indexOf('&&'));
    for (const [name, value] of Object.entries(malloc)) expect(start).toContain(`${name}=${value}`);
    expect(start).toContain(`node ${nodeOptions} dist/apps/gateway/src/main.js`);
  });

  it('puts the deployed NODE_OPTIONS before the parent’s own (a debug preload still loads)', () => {
    const env = withDeployedRuntime({ NODE_OPTIONS: '-r ./probe.cjs', PATH: '/bin' }, { NODE_OPTIONS: '--max-semi-space-size=16', MALLOC_ARENA_MAX: '2' });
    expect(env).toEqual({ NODE_OPTIONS: '--max-semi-space-size=16 -r ./probe.cjs', MALLOC_ARENA_MAX: '2', PATH: '/bin' });
  });

  it('reads quoted and bare values from ENV lines and ignores other variables', () => {
    const dockerfile = 'FROM node\nENV NODE_ENV=production\nENV NODE_OPTIONS="--a --b" MALLOC_ARENA_MAX=2 OTHER=x\nRUN echo MALLOC_X=1\n';
    expect(deployedRuntimeSettings(dockerfile)).toEqual({ NODE_OPTIONS: '--a --b', MALLOC_ARENA_MAX: '2' });
  });
});
