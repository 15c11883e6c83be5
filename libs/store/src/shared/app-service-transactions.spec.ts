import { fillAppServiceTransaction } from './app-service-transactions';

const item = (seq: number, kind: string, n: number) => ({ seq, kind, event: JSON.stringify({ n }) });

describe('filling an application service transaction', () => {
  it('puts to-device messages in toDevice, counted against the ephemeral limit, in queue order', () => {
    const filled = fillAppServiceTransaction('7', [item(1, 'event', 1), item(2, 'to_device', 2), item(3, 'ephemeral', 3), item(4, 'to_device', 4), item(5, 'to_device', 5)], { maxEvents: 10, maxEphemeral: 2 });
    expect(filled).toEqual({ transaction: { txnId: '7', events: [{ n: 1 }], ephemeral: [{ n: 3 }], toDevice: [{ n: 2 }, { n: 4 }] }, lastSeq: 4, eventsJson: '[{"n":1}]' });
  });

  it('leaves toDevice out when there are none', () => {
    expect(fillAppServiceTransaction('1', [item(1, 'event', 1)], { maxEvents: 10, maxEphemeral: 10 })?.transaction).toEqual({ txnId: '1', events: [{ n: 1 }], ephemeral: [] });
  });
});
