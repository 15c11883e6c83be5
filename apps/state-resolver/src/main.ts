// Distributed mode: the state resolver as its own process.
import { sharedPlatform } from '@fedgate/platform';
import { runService } from '@fedgate/service-kit';
import { StateResolverModule } from '@fedgate/state-resolver';

if (require.main === module) {
  runService({ name: 'state-resolver', workers: [StateResolverModule], shared: sharedPlatform });
}
