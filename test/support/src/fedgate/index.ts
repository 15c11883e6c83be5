export { startFedgate, startFedgatePair, ensureFedgateBuilt, DISTRIBUTED_APPS, type FedgateInstance, type FedgateShape, type StartFedgateOptions } from './start-fedgate';
export { FedgateProcess, builtAppMain, type ProcessExit, type ReadyListeners } from './fedgate-process';
export { FakeRemoteServer, type RecordedRequest, type SignedRequestOptions } from './fake-remote-server';
export { openInstanceStore } from './instance-store';
export { deployedRuntimeSettings, withDeployedRuntime } from './deployed-runtime';
export { keepLogsAndDestroy, testResultsDir } from './keep-logs';
