export * from './process';
export { startNats, stopNats, restartNats, LocalNatsServer, ensureNatsServerBinary } from './nats';
export { startMongo, stopMongo, pingMongo } from './mongo';
export * from './tls';
export { startSynapse, registerSynapseUser, type StartSynapseOptions, type SynapseHandle, type SynapseUser } from './synapse';
export { ensureSynapseInstalled, type SynapseInstallation } from './synapse-install';
export * from './bridge';
export * from './fedgate';
export * from './adversary';
