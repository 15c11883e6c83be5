import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore } from './store';

describe('SQLite clientTransactions', () => {
  it('keeps the first event for a (sender, txnId) across reopening', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'client-txns-'));
    const file = path.join(dir, 'store.sqlite');
    try {
      let store = openSqliteStore(file);
      const first = { sender: '@a:x', txnId: 't1', eventId: '$1', roomId: '!r:x', createdTs: 1 };
      expect(await store.clientTransactions.record(first)).toEqual(first);
      expect(await store.clientTransactions.record({ ...first, eventId: '$2' })).toEqual(first);
      expect(await store.clientTransactions.get('@b:x', 't1')).toBeUndefined();
      await store.close();
      store = openSqliteStore(file);
      expect(await store.clientTransactions.get('@a:x', 't1')).toEqual(first);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
