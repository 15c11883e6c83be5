// Read what a running fedgate recorded (audit, event outcomes) from its own store, the way an operator
// would query it: the embedded SQLite file (WAL allows a second reader) or the instance's Mongo database.
import path from 'node:path';
import { openMongoStore, openSqliteStore, type Store } from '@fedgate/store';
import type { FedgateInstance } from './start-fedgate';

export async function openInstanceStore(instance: Pick<FedgateInstance, 'shape' | 'dataDir' | 'mongo'>): Promise<Store> {
  if (instance.shape === 'embedded') return openSqliteStore(path.join(instance.dataDir, 'fedgate.sqlite'));
  if (!instance.mongo) throw new Error('a distributed instance without its Mongo database');
  return openMongoStore(instance.mongo.url, instance.mongo.database);
}
