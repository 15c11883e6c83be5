// Issue 19: an AS transaction's room events go out as the embedded store's queue rows hold them, not serialised
// again: the open transaction's record and the request body are spliced from the rows' text (two serialisations of
// every event less per pushed PDU), and say byte for byte what serialising the transaction would.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore, type Store } from '@fedgate/store';
import { fakeRegistration } from '../registration/fake-registration';
import { AppServiceClient } from './app-service-client';

const dir = mkdtempSync(path.join(os.tmpdir(), 'fedgate-as-text-'));
const file = path.join(dir, 'fedgate.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const event = (i: number) => ({ event_id: `$e${i}`, type: 'm.room.message', sender: '@a:remote.test', content: { body: `text ${i} "quoted" é`, n: i * 1.5 }, unsigned: {} });

describe('AS transaction events as the queue stores them (issue 19)', () => {
  let store: Store;
  beforeEach(async () => {
    store = await openSqliteStore(file);
  });
  afterEach(async () => store.close());

  it('the open transaction carries its events\' stored text (not enumerable), its record reads back the same, the resumed one without it', async () => {
    const q = store.appServiceQueue;
    await q.enqueueMany('as-text', [0, 1, 2].map((i) => ({ itemId: `$e${i}`, kind: 'event' as const, event: event(i) })));
    await q.enqueue('as-text', { itemId: 'typing', kind: 'ephemeral', event: { type: 'm.typing', content: { user_ids: [] } } });
    const stringify = jest.spyOn(JSON, 'stringify');
    const opened = (await q.openTransaction('as-text', { maxEvents: 10, maxEphemeral: 10 }))!;
    const stringifiedEvents = stringify.mock.calls.filter(([value]) => Array.isArray(value) || (typeof value === 'object' && value !== null && 'event_id' in value)).length;
    stringify.mockRestore();
    expect(stringifiedEvents).toBe(0);
    expect(opened.eventsJson).toBe(JSON.stringify([0, 1, 2].map(event)));
    expect(Object.keys(opened)).not.toContain('eventsJson');
    expect(opened).toStrictEqual({ txnId: '1', events: [0, 1, 2].map(event), ephemeral: [{ type: 'm.typing', content: { user_ids: [] } }] });
    const resumed = (await q.openTransaction('as-text', { maxEvents: 10, maxEphemeral: 10 }))!;
    expect(resumed).toStrictEqual(opened);
    expect(resumed.eventsJson).toBeUndefined();
    await q.ackTransaction('as-text', '1');
  });

  it('the request body is the transaction\'s serialisation byte for byte, spliced from the events\' text', async () => {
    const bodies: string[] = [];
    const client = new AppServiceClient({
      fetch: (async (_url: string, init: RequestInit) => {
        bodies.push(String(init.body));
        return new Response('{}', { status: 200 });
      }) as typeof fetch,
    });
    const events = [0, 1].map(event);
    const ephemeral = [{ type: 'm.receipt', content: {} }];
    for (const receiveEphemeral of [true, false]) {
      const registration = fakeRegistration('as-text', 'http://as.test', { receiveEphemeral });
      await client.sendTransaction(registration, { txnId: '7', events, ephemeral });
      await client.sendTransaction(registration, Object.defineProperty({ txnId: '7', events, ephemeral }, 'eventsJson', { value: JSON.stringify(events) }));
      await client.sendTransaction(registration, Object.defineProperty({ txnId: '8', events: [], ephemeral }, 'eventsJson', { value: '[]' }));
      expect(bodies[1]).toBe(bodies[0]);
      expect(JSON.parse(bodies[2]!)).toEqual(receiveEphemeral ? { events: [], ephemeral, 'de.sorunome.msc2409.ephemeral': ephemeral } : { events: [] });
      bodies.length = 0;
    }
  });
});
