export type { JsonObject, PendingTransaction, QueuedItem, TransactionLimits, TransactionQueue } from './transaction-queue';
export { InMemoryTransactionQueue } from './in-memory-transaction-queue';
export { backoffDelayMs, defaultBackoff, type BackoffPolicy } from './backoff';
export { AppServiceClient, AppServiceRequestError, msc3202Fields, type AppServiceClientOptions, type KeyCounts } from './app-service-client';
export { TransactionPusher, type TransactionPusherOptions, type DeliveryFailure, type DeliverySuccess } from './transaction-pusher';
export { PushHealth, readPushState, pushStateWithQueue, appServiceAuditDestination, type PushState, type PushHealthOptions } from './push-health';
export { registerAppServiceQueueGauge, APPSERVICE_QUEUE_DEPTH, type AppServiceQueueSource } from './queue-depth-gauge';
