import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from './open-store';

describe('openStore', () => {
  it('opens the embedded SQLite store from a config', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fedgate-open-store-'));
    try {
      const store = await openStore({ kind: 'sqlite', path: path.join(dir, 'fedgate.db') });
      await store.rooms.ensure({ roomId: '!r:test', roomVersion: '11', creator: '@a:test', createdTs: 1 });
      expect((await store.rooms.get('!r:test'))?.roomVersion).toBe('11');
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
