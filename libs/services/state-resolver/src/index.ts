export { StateResolverModule } from './state-resolver.module';
