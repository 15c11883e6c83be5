export { ChatSyncModule, ChatSyncWorkersModule } from './chat-sync.module';
export { ChatSyncWorkers, CHAT_SYNC_PUSH_BACKOFF } from './delivery/chat-sync-workers';
export { StoreTransactionQueue } from './delivery/store-transaction-queue';
export { CHAT_SYNC_REGISTRY } from './tokens';
export { planCreateRoom, type CreateRoomPlan, type PlannedEvent } from './rooms/create-room-plan';
export { toClientEvent, type ClientEvent } from './rooms/client-event';
export * from './registration';
export * from './push';
