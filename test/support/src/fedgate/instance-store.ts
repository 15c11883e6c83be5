// Read what a running fedgate recorded (audit, event outcomes) from its own store, the way an operator
// would query it: the embedded SQLite file (WAL allows a second reader) or the instance's Mongo database.
import path from 'node:path';
import { openSqliteStore, type Store } from '@fedgate/store';
import type { FedgateInstance } from './start-fedgate';

export async function openInstanceStore(instance: Pick<FedgateInstance, 'shape' | 'dataDir' | 'mongo'>): Promise<Store> {
  if (instance.shape === 'embedded') return openSqliteStore(path.join(instance.dataDir, 'fedgate.sqlite'));
  throw new Error('reading a distributed instance store needs the Mongo adapter export from @fedgate/store');
}
