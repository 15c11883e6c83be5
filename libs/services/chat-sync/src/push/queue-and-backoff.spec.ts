import { backoffDelayMs } from './backoff';
import { InMemoryTransactionQueue } from './in-memory-transaction-queue';

describe('backoffDelayMs', () => {
  const policy = { initialDelayMs: 100, maxDelayMs: 1_000 };
  it.each([
    [1, 0, 50],
    [1, 1, 100],
    [2, 1, 200],
    [4, 1, 800],
    [5, 1, 1_000],
    [5, 0, 500],
    [100, 1, 1_000],
  ])('attempt %i with random %d → %i ms', (attempt, random, expected) => {
    expect(backoffDelayMs(policy, attempt, () => random)).toBe(expected);
  });
});

describe('InMemoryTransactionQueue', () => {
  const limits = { maxEvents: 2, maxEphemeral: 1 };
  const e = (n: number) => ({ kind: 'event' as const, event: { n } });
  const t = (n: number) => ({ kind: 'ephemeral' as const, event: { t: n } });

  it('pins the open transaction until it is acked', async () => {
    const queue = new InMemoryTransactionQueue();
    expect(await queue.openTransaction('as', limits)).toBeNull();
    await queue.enqueue('as', e(1));
    const first = await queue.openTransaction('as', limits);
    await queue.enqueue('as', e(2));
    expect(await queue.openTransaction('as', limits)).toBe(first);
    expect(first).toEqual({ txnId: '1', events: [{ n: 1 }], ephemeral: [] });
    await queue.ackTransaction('as', 'stale');
    expect(await queue.openTransaction('as', limits)).toBe(first);
    await queue.ackTransaction('as', '1');
    expect(await queue.openTransaction('as', limits)).toEqual({ txnId: '2', events: [{ n: 2 }], ephemeral: [] });
  });

  it('cuts batches at the limits without reordering', async () => {
    const queue = new InMemoryTransactionQueue();
    for (const item of [e(1), t(1), e(2), t(2), e(3)]) await queue.enqueue('as', item);
    const batches = [];
    for (let txn = await queue.openTransaction('as', limits); txn; txn = await queue.openTransaction('as', limits)) {
      batches.push({ events: txn.events, ephemeral: txn.ephemeral });
      await queue.ackTransaction('as', txn.txnId);
    }
    expect(batches).toEqual([
      { events: [{ n: 1 }, { n: 2 }], ephemeral: [{ t: 1 }] },
      { events: [{ n: 3 }], ephemeral: [{ t: 2 }] },
    ]);
  });

  it('keeps services apart', async () => {
    const queue = new InMemoryTransactionQueue();
    await queue.enqueue('a', e(1));
    expect(await queue.openTransaction('b', limits)).toBeNull();
    expect((await queue.openTransaction('a', limits))?.txnId).toBe('1');
  });
});
