export * from './tokens';
export { buildPlatform, buildFederationClient, sharedPlatform, topologyFor, type Platform, type PlatformContext } from './build-platform';
export { xMatrixRequestSigner } from './x-matrix-signer';
export { addressAllowlist } from './address-allowlist';
export { PartitionOwnership, assignPartitions, type PartitionOwnershipOptions, type OwnershipLogger, type ElasticOwnership } from './partition-ownership';
export { elasticOwnershipFor, type PartitionedStage } from './elastic-ownership';
export { DataDirInUseError, EMBEDDED_WRITER_LEASE } from './embedded-writer-lease';
