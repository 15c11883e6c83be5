// Issue 19, idle RSS: start-up left the young generation at its maximum and the old generation fragmented, and
// nothing collected with memory in mind afterwards; a service's process now runs one last-resort collection
// before its ready line (embedded-idle-memory.spec.ts checks it in a started gateway).
import { getHeapSpaceStatistics } from 'node:v8';
import { exposedGc, releaseStartUpGarbage, type GcFunction } from './release-start-up-garbage';

const newSpaceBytes = () => getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')!.space_size;

describe('releasing the start-up garbage (issue 19, idle RSS)', () => {
  it('asks V8 for a synchronous last-resort full collection', () => {
    const calls: unknown[] = [];
    releaseStartUpGarbage(((options) => calls.push(options)) as GcFunction);
    expect(calls).toEqual([{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
  });

  it('gets V8’s gc without --expose-gc, and puts no gc on the global object', () => {
    // A jest worker that ran a spec setting --expose-gc for good gives every later test file's global a gc already.
    const before = (globalThis as { gc?: unknown }).gc;
    const gc = exposedGc();
    expect(typeof gc).toBe('function');
    expect((globalThis as { gc?: unknown }).gc).toBe(before);
  });

  it('shrinks a young generation that allocation grew', () => {
    let kept: unknown[] = [];
    for (let round = 0; round < 20; round++) kept = Array.from({ length: 50_000 }, (_, i) => ({ i, round, text: `${round}:${i}` }));
    const grown = newSpaceBytes();
    kept = [];
    releaseStartUpGarbage();
    expect(kept).toEqual([]);
    expect(newSpaceBytes()).toBeLessThan(grown);
  });
});
