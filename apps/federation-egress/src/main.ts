// Distributed mode: federation egress as its own process.
// service-kit first: it loads @nestjs/common before the services do (see its start-up/load-nest-common).
import { runService } from '@fedgate/service-kit';
import { FederationEgressModule } from '@fedgate/federation-egress';
import { sharedPlatform } from '@fedgate/platform';

if (require.main === module) {
  runService({ name: 'federation-egress', workers: [FederationEgressModule], shared: sharedPlatform });
}
