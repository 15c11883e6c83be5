export { StoreKeyRing, type KeyFetcher, type NotaryConfig, type StoreKeyRingOptions, type KeyRingStats } from './store-key-ring';
export { DEFAULT_KEY_FETCH_LIMITS, type KeyFetchLimits, type FetchRefusal } from './fetch-budget';
