export { StoreKeyRing, type KeyFetcher, type NotaryConfig, type StoreKeyRingOptions } from './store-key-ring';
