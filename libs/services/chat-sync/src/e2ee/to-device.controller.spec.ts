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
  /** The controller of a process whose writes (store and bus) fail from write `dieAt` on; counts them. */
  function dyingAt(dieAt: number) {
    let writes = 0;
    const write = () => {
      if (++writes >= dieAt) throw new Error(`simulated crash at write ${writes}`);
    };
    const toDevice = new Proxy(store.toDevice, {
      get: (t, key) => {
        const value = (t as unknown as Record<string | symbol, unknown>)[key] as (...args: unknown[]) => unknown;
        if (key !== 'reserve' && key !== 'markPublished') return value.bind(t);
        return async (...args: unknown[]) => (write(), value.apply(t, args));
      },
    });
    const dyingBus = { publish: async (...args: Parameters<Bus['publish']>) => (write(), bus.publish(...args)) } as unknown as Bus;
    const controller = new ToDeviceController({ ...store, toDevice } as Store, dyingBus, topology, identity);
    return { send: (txnId: string) => controller.send({ userId: ALICE } as never, 'm.room.encrypted', txnId, body), writes: () => writes };
  }
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

  it('a process dying at any write (reserve, each publish, mark published): after the restart and a retry both parts are out, once', async () => {
    const probe = dyingAt(Infinity);
    await probe.send('probe');
    // The reservation, the local part, the remote part, the mark.
    expect(probe.writes()).toBe(4);
    for (let dieAt = 1; dieAt <= probe.writes(); dieAt++) {
      published = [];
      const txnId = `t-${dieAt}`;
      await expect(dyingAt(dieAt).send(txnId)).rejects.toThrow('simulated crash');
      await republishToDevice(store, bus, topology, 'gw.test'); // the restart
      expect(await send(txnId)).toEqual({}); // the client's retry
      expect(distinct()).toEqual([expect.stringContaining(topology.inboundEdu.subjectFor('m.direct_to_device')), expect.stringContaining(topology.outboundEdu.subject)]);
      expect(await republishToDevice(store, bus, topology, 'gw.test')).toBe(0);
    }
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
