import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore, type Store } from '@fedgate/store';
import { DataDirInUseError, EMBEDDED_WRITER_LEASE, holdEmbeddedWriterLease, writerHolder, type WriterLease, type WriterLeaseOptions } from './embedded-writer-lease';

describe('the embedded gateway holds its data directory (sole-writer caches)', () => {
  let dir: string;
  let store: Store;
  const held: WriterLease[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fedgate-writer-lease-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'fedgate.sqlite') });
  });
  afterEach(async () => {
    for (const lease of held.splice(0)) await lease.release();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const options = (over: Partial<WriterLeaseOptions>): WriterLeaseOptions => ({
    leases: store.leases,
    storePath: path.join(dir, 'fedgate.sqlite'),
    host: 'gw-host',
    pid: 100,
    token: 'first',
    isAlive: () => true,
    onLost: () => undefined,
    ...over,
  });
  const hold = async (over: Partial<WriterLeaseOptions>) => {
    const lease = await holdEmbeddedWriterLease(options(over));
    held.push(lease);
    return lease;
  };

  it('a second process on the same data directory is refused while the first lives, with the holder named', async () => {
    await hold({});
    const second = holdEmbeddedWriterLease(options({ pid: 200, token: 'second' }));
    await expect(second).rejects.toThrow(DataDirInUseError);
    await expect(second).rejects.toThrow(/in use by another fedgate process \(gw-host\/100\/first, lease until /);
    // Another host's process is never judged dead from here: it lets go when its lease expires.
    await expect(holdEmbeddedWriterLease(options({ host: 'other-host', pid: 100, token: 'third', isAlive: () => false }))).rejects.toThrow(DataDirInUseError);
  });

  it('a restart after the first was killed (its pid gone) takes over at once, without waiting for the expiry', async () => {
    await holdEmbeddedWriterLease(options({})); // killed: never released
    const restarted = await hold({ pid: 200, token: 'restart', isAlive: (pid) => pid !== 100 });
    expect(restarted.holder).toBe(writerHolder('gw-host', 200, 'restart'));
    expect((await store.leases.live(EMBEDDED_WRITER_LEASE))[0].holder).toBe(restarted.holder);
  });

  it('a restarted container reusing the dead process\'s pid takes over; a second start inside one live process does not', async () => {
    await store.leases.tryAcquire(EMBEDDED_WRITER_LEASE, writerHolder('gw-host', 7, 'previous-life'), 30_000);
    const thisLife = await hold({ pid: 7, token: 'this-life' });
    expect(thisLife.holder).toBe(writerHolder('gw-host', 7, 'this-life'));
    await expect(holdEmbeddedWriterLease(options({ pid: 7, token: 'same-process' }))).rejects.toThrow(DataDirInUseError);
  });

  it('a holder frozen past its lease and taken over hears of it at its next renewal, and stops renewing', async () => {
    const lost: Array<string | undefined> = [];
    const frozen = await hold({ ttlMs: 200, renewEveryMs: 60_000, onLost: (taker) => lost.push(taker) });
    await expect(holdEmbeddedWriterLease(options({ pid: 200, token: 'taker' }))).rejects.toThrow(DataDirInUseError);
    await new Promise((resolve) => setTimeout(resolve, 250)); // frozen: no renewal, the lease runs out
    const taker = await hold({ pid: 200, token: 'taker' });
    await frozen.renewNow();
    expect(lost).toEqual([taker.holder]);
    await frozen.renewNow();
    expect(lost).toHaveLength(1);
    expect((await store.leases.live(EMBEDDED_WRITER_LEASE))[0].holder).toBe(taker.holder);
  });

  it('a clean stop lets the next start take the directory at once', async () => {
    const first = await hold({});
    await first.release();
    const next = await hold({ pid: 200, token: 'next' });
    expect((await store.leases.live(EMBEDDED_WRITER_LEASE))[0].holder).toBe(next.holder);
  });

});
