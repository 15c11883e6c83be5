export { FederationIngressModule } from './federation-ingress.module';
