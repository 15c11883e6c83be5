import { Module } from '@nestjs/common';

/** chat-sync: the client-server subset the application services call, and their transaction pushers. */
@Module({})
export class ChatSyncModule {}
