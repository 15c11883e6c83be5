import type { MongoConnectOptions } from './mongo/database';
import { openMongoStore } from './mongo/store';
import type { Store, StoreConfig } from './ports/store';
import { openSqliteStore } from './sqlite/store';

/** Opens the store a configuration names: MongoDB (distributed mode) or one SQLite file (embedded mode). */
export async function openStore(config: StoreConfig, mongoOptions: MongoConnectOptions = {}): Promise<Store> {
  switch (config.kind) {
    case 'mongo':
      return openMongoStore(config.url, config.db, mongoOptions);
    case 'sqlite':
      return openSqliteStore(config.path);
  }
}
