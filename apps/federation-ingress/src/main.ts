// Distributed mode: federation ingress as its own process, serving the federation HTTPS listener.
import { runService } from '@fedgate/service-kit';
import { FederationIngressModule } from '@fedgate/federation-ingress';

if (require.main === module) {
  runService({ name: 'federation-ingress', federation: [FederationIngressModule] });
}
