// Distributed mode: the state resolver as its own process.
// service-kit first: it loads @nestjs/common before the services do (see its start-up/load-nest-common).
import { runService } from '@fedgate/service-kit';
import { sharedPlatform } from '@fedgate/platform';
import { StateResolverModule } from '@fedgate/state-resolver';

if (require.main === module) {
  runService({ name: 'state-resolver', workers: [StateResolverModule], shared: sharedPlatform });
}
