import type { Store } from '@fedgate/store';

// SEAM(store): the Mongo adapter is landing in @fedgate/store (openMongoStore); switch to it here when exported.
export async function openDistributedStore(url: string, database: string): Promise<Store> {
  throw new Error(`distributed mode needs the Mongo store adapter (${url}/${database}), which @fedgate/store does not export yet`);
}
