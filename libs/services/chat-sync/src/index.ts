export { ChatSyncModule } from './chat-sync.module';
export * from './registration';
export * from './push';
