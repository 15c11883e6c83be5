export * from './errors';
export { AddressPolicy, isForbiddenAddress, type AddressPolicyConfig } from './address-policy';
export { HttpsTransport, type HttpsTransportOptions } from './https-transport';
export { systemDnsResolver, type DnsResolver, type ResolvedAddress, type SrvRecord } from './dns';
export {
  createServerNameResolver,
  DEFAULT_FEDERATION_PORT,
  resolveServerName,
  type DiscoveryDeps,
  type ResolvedDestination,
  type ServerNameResolver,
} from './discovery';
export * from './federation-http-client';
export type { RequestSigner } from './request-signer';
export { orderSrvRecords } from './srv-order';
export {
  cacheLifetimeFromHeaders,
  parseWellKnownBody,
  WellKnownCache,
  type WellKnownCacheOptions,
  type WellKnownFetcher,
  type WellKnownHttpResponse,
} from './well-known';
export type { KeyRing, KeyRingCaller, ServerKeyRequest } from './key-ring';
export { StoreKeyRing, type KeyFetcher, type NotaryConfig, type StoreKeyRingOptions, type KeyRingStats, DEFAULT_KEY_FETCH_LIMITS, type KeyFetchLimits, type FetchRefusal } from './key-ring/index';
export * from './federation-api';
export {
  partitionRemoteEvents,
  verifyRemoteEvents,
  wireForm,
  type AcceptedRemoteEvent,
  type RefusedRemoteEvent,
  type RemoteEventExpectations,
  type RemoteEventResult,
} from './remote-events';
