// Distributed mode: chat-sync as its own process, serving the client-server (AS) HTTP listener.
import { ChatSyncModule } from '@fedgate/chat-sync';
import { sharedPlatform } from '@fedgate/platform';
import { runService } from '@fedgate/service-kit';

if (require.main === module) {
  runService({ name: 'chat-sync', clientServer: [ChatSyncModule], shared: sharedPlatform });
}
