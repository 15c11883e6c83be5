import type { AuditRepository } from './audit';
import type { EventRepository } from './events';
import type { DestinationRepository, ReceivedTransactionRepository, ServerKeyRepository } from './federation';
import type { AppServiceRepository, MediaRepository } from './platform';
import type { RoomRepository } from './rooms';
import type { StateSnapshotRepository } from './state';

/** Everything the pipeline keeps, behind one handle. Each service uses the repositories it needs. */
export interface Store {
  readonly events: EventRepository;
  readonly state: StateSnapshotRepository;
  readonly rooms: RoomRepository;
  readonly receivedTransactions: ReceivedTransactionRepository;
  readonly destinations: DestinationRepository;
  readonly serverKeys: ServerKeyRepository;
  readonly appServices: AppServiceRepository;
  readonly media: MediaRepository;
  readonly audit: AuditRepository;
  close(): Promise<void>;
}

export type StoreConfig = { kind: 'mongo'; url: string; db: string } | { kind: 'sqlite'; path: string };
