/** The ApplicationServiceRegistry built from config at start. */
export const CHAT_SYNC_REGISTRY = Symbol.for('fedgate.chat-sync.registry');
/** The TransactionQueue the per-AS consumers feed and the pusher drains. */
export const CHAT_SYNC_TRANSACTION_QUEUE = Symbol.for('fedgate.chat-sync.transaction-queue');
