// Distributed mode: federation ingress as its own process, serving the federation HTTPS listener.
// service-kit first: it loads @nestjs/common before the services do (see its start-up/load-nest-common).
import { runService } from '@fedgate/service-kit';
import { FederationIngressModule } from '@fedgate/federation-ingress';
import { sharedPlatform } from '@fedgate/platform';

if (require.main === module) {
  runService({ name: 'federation-ingress', federation: [FederationIngressModule], shared: sharedPlatform });
}
