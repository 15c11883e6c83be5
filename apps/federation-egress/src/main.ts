// Distributed mode: federation egress as its own process.
import { runService } from '@fedgate/service-kit';
import { FederationEgressModule } from '@fedgate/federation-egress';

if (require.main === module) {
  runService({ name: 'federation-egress', workers: [FederationEgressModule] });
}
