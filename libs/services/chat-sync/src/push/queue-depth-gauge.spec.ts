// Issue 12: what shows a bridge falling behind is how much waits for it; only the replica pushing to an
// application service reports its queue, so the series of all replicas add up to each queue once.
import { Registry } from 'prom-client';
import { InMemoryTransactionQueue } from './in-memory-transaction-queue';
import { registerAppServiceQueueGauge } from './queue-depth-gauge';

describe('application service queue depth gauge (issue 12)', () => {
  it('grows while items wait, drops once the AS accepted them, and covers only the services pushed from here', async () => {
    const queue = new InMemoryTransactionQueue();
    const registry = new Registry();
    let ours = ['rc'];
    registerAppServiceQueueGauge(registry, { pushedHere: () => ours, pendingCount: async (id) => queue.pendingCount(id) });
    const depth = async () => (await registry.metrics()).split('\n').filter((l) => l.startsWith('fedgate_appservice_queue_depth{'));
    for (let n = 0; n < 3; n++) await queue.enqueue('rc', { kind: 'event', event: { event_id: `$${n}` } });
    await queue.enqueue('other', { kind: 'event', event: { event_id: '$x' } });
    expect(await depth()).toEqual(['fedgate_appservice_queue_depth{appservice="rc"} 3']);
    const transaction = (await queue.openTransaction('rc', { maxEvents: 100, maxEphemeral: 100 }))!;
    await queue.ackTransaction('rc', transaction.txnId);
    expect(await depth()).toEqual(['fedgate_appservice_queue_depth{appservice="rc"} 0']);
    ours = ['other'];
    expect(await depth()).toEqual(['fedgate_appservice_queue_depth{appservice="other"} 1']);
  });
});
