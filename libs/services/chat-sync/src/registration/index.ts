export type { AppServiceRegistration, NamespaceRule, RegistrationNamespaces } from './registration';
export { parseRegistration, loadRegistrationFile, RegistrationError } from './load-registration';
export { compileNamespaceRegex, NamespaceMatcher, type NamespaceMatch } from './namespace-matcher';
export { ApplicationService, type InterestEvent, type InterestRoom } from './application-service';
export { ApplicationServiceRegistry } from './application-service-registry';
