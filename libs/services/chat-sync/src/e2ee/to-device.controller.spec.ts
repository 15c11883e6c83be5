// Issue 13: /sendToDevice is kept before it is published, so a process dying between the two loses no
// message: the repair on start (or the client's retry, however late) publishes it, and once only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busTopology } from '@fedgate/bus';
import type { Bus, ServerIdentity } from '@fedgate/platform';
import { openSqliteStore, type Store } from '@fedgate/store';
import { republishToDevice, ToDeviceController } from './to-device.controller';

const topology = busTopology({ prefix: 'todevice' });
const identity = { serverName: 'gw.test' } as ServerIdentity;
const ALICE = '@chat_alice:gw.test';
const body = { messages: { '@chat_bob:gw.test': { PHONE: { n: 1 } }, '@carol:remote.test': { '*': { n: 1 } } } };

describe('/sendToDevice cut short (issue 13)', () => {
  let dir: string;
  let store: Store;
  let published: Array<{ subject: string; messageId?: string }>;
  let failFrom: number;
  let calls: number;
  const bus = {
    publish: async (subject: string, _data: unknown, options?: { messageId?: string }) => {
      if (++calls >= failFrom) throw new Error('simulated crash before the publish');
      published.push({ subject, messageId: options?.messageId });
    },
  } as unknown as Bus;
  const send = (txnId: string) => new ToDeviceController(store, bus, topology, identity).send({ userId: ALICE } as never, 'm.room.encrypted', txnId, body);
  /** What reached the bus, deduplicated by message ID as the bus does. */
  const distinct = () => [...new Set(published.map((p) => `${p.subject} ${p.messageId}`))];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'to-device-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
    published = [];
    failFrom = Infinity;
    calls = 0;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([1, 2])('a process dying at publish %i: the repair on start publishes both parts, and a later retry nothing more', async (dieAt) => {
    failFrom = dieAt;
    await expect(send('t1')).rejects.toThrow('simulated crash');
    failFrom = Infinity;
    expect(await republishToDevice(store, bus, topology, 'gw.test')).toBe(1);
    expect(distinct()).toEqual([expect.stringContaining(topology.inboundEdu.subjectFor('m.direct_to_device')), expect.stringContaining(topology.outboundEdu.subject)]);
    const before = published.length;
    expect(await send('t1')).toEqual({});
    expect(published).toHaveLength(before);
    expect(await republishToDevice(store, bus, topology, 'gw.test')).toBe(0);
  });

  it('the client retrying a request cut short, even long after, publishes it', async () => {
    failFrom = 1;
    await expect(send('t2')).rejects.toThrow('simulated crash');
    failFrom = Infinity;
    // An hour later: past any bus deduplication window.
    const later = Date.now() + 3_600_000;
    jest.spyOn(Date, 'now').mockReturnValue(later);
    try {
      expect(await send('t2')).toEqual({});
    } finally {
      jest.restoreAllMocks();
    }
    expect(distinct()).toHaveLength(2);
  });
});
