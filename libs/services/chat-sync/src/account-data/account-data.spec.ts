// Account data is bounded per user: in size per entry and in number of entries, so one user cannot fill the store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MatrixError } from '@fedgate/service-kit';
import { openSqliteStore, type Store } from '@fedgate/store';
import type { Requester } from '../client-server/requester';
import { AccountData, MAX_ACCOUNT_DATA_ENTRIES } from './account-data';

describe('account data bounds', () => {
  let dir: string;
  let store: Store;
  let accountData: AccountData;
  const alice: Requester = { service: {} as never, userId: '@alice:gw.test' };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-account-data-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    accountData = new AccountData(store);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`refuses a new entry past ${MAX_ACCOUNT_DATA_ENTRIES} per user (403 M_RESOURCE_LIMIT_EXCEEDED), still replaces existing ones, and others are not affected`, async () => {
    for (let i = 0; i < MAX_ACCOUNT_DATA_ENTRIES; i++) await store.accountData.put({ userId: alice.userId, roomId: i % 2 ? '!r:gw.test' : null, type: `t.${i}`, content: {}, updatedTs: 1 });
    const refused = await accountData.putByClient(alice, alice.userId, null, 't.new', { a: 1 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(MatrixError);
    expect([(refused as MatrixError).status, (refused as MatrixError).errcode]).toEqual([403, 'M_RESOURCE_LIMIT_EXCEEDED']);
    await accountData.putByClient(alice, alice.userId, null, 't.0', { replaced: true });
    expect(await accountData.get(alice, alice.userId, null, 't.0')).toEqual({ replaced: true });
    // The fully-read marker the server keeps is not a client's entry: a user in many rooms keeps one in each.
    await accountData.put(alice.userId, '!another:gw.test', 'm.fully_read', { event_id: '$e' });
    expect(await accountData.get(alice, alice.userId, '!another:gw.test', 'm.fully_read')).toEqual({ event_id: '$e' });
    // …and the markers do not use up a user's own budget: one short of it with markers in five rooms, one more fits.
    const carl = '@carl:gw.test';
    for (let i = 0; i < MAX_ACCOUNT_DATA_ENTRIES - 1; i++) await store.accountData.put({ userId: carl, roomId: null, type: `t.${i}`, content: {}, updatedTs: 1 });
    for (let i = 0; i < 5; i++) await accountData.put(carl, `!room${i}:gw.test`, 'm.fully_read', { event_id: '$e' });
    await accountData.putByClient({ service: {} as never, userId: carl }, carl, null, 'm.direct', {});
    const bob: Requester = { service: {} as never, userId: '@bob:gw.test' };
    await accountData.putByClient(bob, bob.userId, null, 't.new', { a: 1 });
    expect(await store.accountData.countForUser(alice.userId)).toBe(MAX_ACCOUNT_DATA_ENTRIES + 1);
  });
});
