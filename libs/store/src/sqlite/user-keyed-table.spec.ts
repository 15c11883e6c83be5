// Account data and private receipts share one table helper (review5): a null scope stored as '', one row per key
// replaced on conflict, rows deleted per user. Both repositories, as they behaved before, and across reopening.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore } from './store';

describe('SQLite account data and private receipts (user-keyed tables)', () => {
  it('upserts per key, reads a null scope back as null, deletes per user, and keeps rows across reopening', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'user-keyed-'));
    const file = path.join(dir, 'store.sqlite');
    try {
      let store = openSqliteStore(file);
      await store.accountData.put({ userId: '@a:x', roomId: null, type: 'm.direct', content: { v: 1 }, updatedTs: 1 });
      await store.accountData.put({ userId: '@a:x', roomId: null, type: 'm.direct', content: { v: 2 }, updatedTs: 2 });
      await store.accountData.put({ userId: '@a:x', roomId: '!r:x', type: 'm.tag', content: {}, updatedTs: 3 });
      await store.privateReceipts.put({ userId: '@a:x', roomId: '!r:x', threadId: null, eventId: '$1', ts: 1 });
      await store.privateReceipts.put({ userId: '@a:x', roomId: '!r:x', threadId: null, eventId: '$2', ts: 2 });
      await store.privateReceipts.put({ userId: '@a:x', roomId: '!r:x', threadId: '$t', eventId: '$3', ts: 3 });
      await store.close();
      store = openSqliteStore(file);
      expect(await store.accountData.get('@a:x', null, 'm.direct')).toEqual({ userId: '@a:x', roomId: null, type: 'm.direct', content: { v: 2 }, updatedTs: 2 });
      expect((await store.accountData.listForUser('@a:x')).map((e) => [e.roomId, e.type])).toEqual([
        [null, 'm.direct'],
        ['!r:x', 'm.tag'],
      ]);
      expect(await store.privateReceipts.forRoom('@a:x', '!r:x')).toEqual([
        { userId: '@a:x', roomId: '!r:x', threadId: null, eventId: '$2', ts: 2 },
        { userId: '@a:x', roomId: '!r:x', threadId: '$t', eventId: '$3', ts: 3 },
      ]);
      expect(await store.accountData.deleteForUser('@a:x')).toBe(2);
      expect(await store.privateReceipts.deleteForUser('@a:x')).toBe(2);
      expect(await store.privateReceipts.forRoom('@a:x', '!r:x')).toEqual([]);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
