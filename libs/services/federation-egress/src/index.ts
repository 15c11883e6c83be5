export { FederationEgressModule, FederationEgressWorker } from './federation-egress.module';
export { FederationEgress } from './federation-egress';
export { DestinationSender } from './destination-sender';
export { EGRESS_SETTINGS, egressSettingsFrom, type EgressSettings } from './egress-settings';
export type { EgressContext, EgressLogger } from './egress-context';
export { destinationsForEvent } from './destinations';
export { retryDelayMs } from './backoff';
export { classifySendFailure, type SendFailure } from './send-failure';
