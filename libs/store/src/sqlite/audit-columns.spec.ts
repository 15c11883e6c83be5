import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openSqliteStore } from './store';

describe('sqlite audit table of an older release', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'fedgate-audit-cols-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gains the policy decision columns when opened, keeping its records', async () => {
    const file = path.join(dir, 'old.sqlite');
    const old = new DatabaseSync(file);
    old.exec(`CREATE TABLE store_audit (
      id INTEGER PRIMARY KEY AUTOINCREMENT, direction TEXT NOT NULL, origin TEXT NOT NULL, destination TEXT NOT NULL,
      method TEXT NOT NULL, path TEXT NOT NULL, ts INTEGER NOT NULL, duration_ms REAL NOT NULL, status INTEGER NOT NULL,
      outcome TEXT NOT NULL, reason TEXT, txn_id TEXT, pdu_count INTEGER, edu_count INTEGER, details TEXT)`);
    old.exec(`INSERT INTO store_audit (direction, origin, destination, method, path, ts, duration_ms, status, outcome) VALUES ('in', 'old.test', 'gw.test', 'PUT', '/x', 1, 1, 200, 'ok')`);
    old.close();
    const store = openSqliteStore(file);
    try {
      await store.audit.append({ direction: 'in', origin: 'new.test', destination: 'gw.test', method: 'POST', path: '/_matrix/policy/v1/sign', ts: 2, durationMs: 1, status: 200, outcome: 'ok', decision: 'signed', roomId: '!r:gw.test', rule: 'default' });
      expect((await store.audit.query({ origin: 'old.test' })).map((r) => r.path)).toEqual(['/x']);
      expect((await store.audit.query({ roomId: '!r:gw.test' })).map((r) => [r.origin, r.rule])).toEqual([['new.test', 'default']]);
    } finally {
      await store.close();
    }
  });
});
