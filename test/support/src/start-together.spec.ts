// The test-harness leak (review5): one of two peers a file starts with Promise.all failed to start, and the other
// was never destroyed and outlived the run. startTogether tears down what started.
import { startTogether } from './start-together';

function fakePeer(name: string, log: string[]) {
  return { name, destroy: async () => void log.push(`destroyed ${name}`) };
}
function fakeServer(name: string, log: string[]) {
  return { name, stop: async () => void log.push(`stopped ${name}`) };
}
const failing = (message: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(message)), 5));

describe('startTogether (test harness leak)', () => {
  it('returns every started peer, in order, when all start', async () => {
    const log: string[] = [];
    const [a, b] = await startTogether([Promise.resolve(fakePeer('a', log)), Promise.resolve(fakeServer('b', log))] as const);
    expect([a.name, b.name]).toEqual(['a', 'b']);
    expect(log).toEqual([]);
  });

  it('when one start fails, destroys (or stops) the ones that started, then throws that start’s error', async () => {
    const log: string[] = [];
    await expect(startTogether([Promise.resolve(fakePeer('a', log)), failing('b did not start'), Promise.resolve(fakeServer('c', log))] as const)).rejects.toThrow('b did not start');
    expect(log.sort()).toEqual(['destroyed a', 'stopped c']);
  });

  it('waits for a slow start to finish before tearing it down (it would otherwise start after the throw and leak)', async () => {
    const log: string[] = [];
    const slow = new Promise<ReturnType<typeof fakePeer>>((resolve) => setTimeout(() => resolve(fakePeer('slow', log)), 30));
    await expect(startTogether([failing('first failed'), slow] as const)).rejects.toThrow('first failed');
    expect(log).toEqual(['destroyed slow']);
  });

  it('reports the start error, not a tear-down error, and keeps the other failures as its cause', async () => {
    const broken = { destroy: async () => Promise.reject(new Error('tear-down failed')) };
    const error: Error = await startTogether([Promise.resolve(broken), failing('a'), failing('b')] as const).then(
      () => new Error('started'),
      (e: Error) => e,
    );
    expect(error.message).toBe('a');
    expect((error.cause as Error[]).map((e) => e.message)).toEqual(['b']);
  });
});
