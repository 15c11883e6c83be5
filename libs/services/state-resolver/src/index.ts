export { StateResolverModule, STATE_RESOLVER } from './state-resolver.module';
export { StateResolver, type StateResolverDeps } from './state-resolver';
export { RoomReader, type StateAt, type StateIdsAt, type MissingEventsQuery } from './room-reader';
export { RoomTimeline } from './room-timeline';
export { EventBuilder, finishEvent, type EventDraft, type ServerSigner } from './event-builder';
export { clientTransactionLog, type ClientTransactionLog } from './client-transactions';
export { TestNetwork, TestServer, type FederationPeer, type PeerRequest } from './testing/test-server';
