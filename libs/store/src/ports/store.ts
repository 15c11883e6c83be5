import type { AccountDataRepository } from './account-data';
import type { OpenIdTokenRepository } from './openid-tokens';
import type { PrivateReceiptRepository } from './private-receipts';
import type { AuditRepository } from './audit';
import type { AliasRepository, AppServiceQueueRepository, LocalMembershipRepository, ProfileRepository } from './chat';
import type { ChatLifecycleRepository } from './chat-lifecycle';
import type { ClientTransactionRepository } from './client-transactions';
import type { EventRepository } from './events';
import type { PendingCommitRepository } from './pending-commits';
import type { PartialStateRoomRepository } from './partial-state-rooms';
import type { RedactionRepository } from './redactions';
import type { RoomDirectoryRepository } from './room-directory';
import type { EgressQueueRepository } from './egress-queue';
import type { DestinationRepository, ReceivedTransactionRepository, ServerKeyRepository } from './federation';
import type { AppServiceRepository, MediaRepository } from './platform';
import type { LeaseRepository } from './leases';
import type { DeviceKeyRepository } from './device-keys';
import type { DeviceListRepository } from './device-lists';
import type { ToDeviceRepository } from './to-device';
import type { RoomRepository } from './rooms';
import type { StateSnapshotRepository } from './state';
import type { CommitWriter } from './commit-writes';

/** Everything the pipeline keeps, behind one handle. Each service uses the repositories it needs. */
export interface Store {
  readonly events: EventRepository;
  readonly state: StateSnapshotRepository;
  readonly rooms: RoomRepository;
  readonly receivedTransactions: ReceivedTransactionRepository;
  readonly destinations: DestinationRepository;
  readonly egressQueue: EgressQueueRepository;
  readonly serverKeys: ServerKeyRepository;
  readonly appServices: AppServiceRepository;
  readonly media: MediaRepository;
  readonly audit: AuditRepository;
  /** chat-sync: local users' profiles, room aliases, local memberships, per-AS push queues. */
  readonly profiles: ProfileRepository;
  readonly aliases: AliasRepository;
  readonly memberships: LocalMembershipRepository;
  readonly appServiceQueue: AppServiceQueueRepository;
  /** chat-sync's admin paths: deactivated users, deleted/blocked rooms, forgotten rooms. */
  readonly chatLifecycle: ChatLifecycleRepository;
  /** state-resolver: (sender, txnId) of local events, so retried sends answer with the first event. */
  readonly clientTransactions: ClientTransactionRepository;
  /** state-resolver: redactions applied to their targets (readers see them as `EventRecord.redactedBy`). */
  readonly redactions: RedactionRepository;
  /** Named locks with an expiry, shared by every process on this store (ingress's per-origin transaction lock). */
  readonly leases: LeaseRepository;
  /** state-resolver: commits under way, finished by the repair path after a crash or an outage. */
  readonly pendingCommits: PendingCommitRepository;
  /** state-resolver: the store writes of one event's commit, one unit where the store can make them one. */
  readonly commits: CommitWriter;
  /** state-resolver: rooms joined with partial state, until their full state is in (the resync resumes after a restart). */
  readonly partialStateRooms: PartialStateRoomRepository;
  /** chat-sync writes, ingress reads: which rooms are published in the public room directory. */
  readonly roomDirectory: RoomDirectoryRepository;
  /** chat-sync and ingress: devices, their keys, cross-signing keys and device-list stream ids (end-to-end encryption). */
  readonly deviceKeys: DeviceKeyRepository;
  /** chat-sync: the device-list change log (and outbox of local changes' EDUs), other servers' users' device lists. */
  readonly deviceLists: DeviceListRepository;
  /** chat-sync: `/sendToDevice` requests until published, inbound to-device messages already handed on. */
  readonly toDevice: ToDeviceRepository;
  /** chat-sync: local users' account data, global and per room (`m.direct`, tags, `m.fully_read`). */
  readonly accountData: AccountDataRepository;
  /** chat-sync issues, ingress checks: OpenID tokens of local users (hashes only). */
  readonly openIdTokens: OpenIdTokenRepository;
  /** chat-sync: local users' private read receipts (`m.read.private`), kept for their owner, never federated. */
  readonly privateReceipts: PrivateReceiptRepository;
  close(): Promise<void>;
}

export type StoreConfig = { kind: 'mongo'; url: string; db: string } | { kind: 'sqlite'; path: string };
