// Distributed mode: federation egress as its own process.
import { FederationEgressModule } from '@fedgate/federation-egress';
import { sharedPlatform } from '@fedgate/platform';
import { runService } from '@fedgate/service-kit';

if (require.main === module) {
  runService({ name: 'federation-egress', workers: [FederationEgressModule], shared: sharedPlatform });
}
