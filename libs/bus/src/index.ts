export * from './bus';
export * from './messages';
export * from './subjects';
export { partitionOf, subjectMatches, fnv1a32 } from './partition';
export { settle, exhaustedBeforeHandling, defaultRetryDelayMs, type Settlement } from './settlement';
export { extractContext } from './tracing';
export { EmbeddedBus, type EmbeddedBusOptions } from './embedded-bus';
export { JetStreamBus, type JetStreamBusOptions } from './jetstream-bus';
export { busOptionsFor } from './options';
