// Distributed mode: federation ingress as its own process, serving the federation HTTPS listener.
import { FederationIngressModule } from '@fedgate/federation-ingress';
import { sharedPlatform } from '@fedgate/platform';
import { runService } from '@fedgate/service-kit';

if (require.main === module) {
  runService({ name: 'federation-ingress', federation: [FederationIngressModule], shared: sharedPlatform });
}
