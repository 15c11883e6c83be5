// Distributed mode: chat-sync as its own process — the client-server (AS) HTTP listener and its bus
// workers (room log and EDU fan-out, per-AS queues and the pusher).
// service-kit first: it loads @nestjs/common before the services do (see its start-up/load-nest-common).
import { runService } from '@fedgate/service-kit';
import { ChatSyncModule, ChatSyncWorkersModule } from '@fedgate/chat-sync';
import { sharedPlatform } from '@fedgate/platform';

if (require.main === module) {
  runService({ name: 'chat-sync', clientServer: [ChatSyncModule], workers: [ChatSyncWorkersModule], shared: sharedPlatform });
}
