// Distributed mode: chat-sync as its own process, serving the client-server (AS) HTTP listener.
import { runService } from '@fedgate/service-kit';
import { ChatSyncModule } from '@fedgate/chat-sync';

if (require.main === module) {
  runService({ name: 'chat-sync', clientServer: [ChatSyncModule] });
}
