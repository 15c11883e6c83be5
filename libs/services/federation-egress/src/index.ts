export { FederationEgressModule } from './federation-egress.module';
