export { TestBridge, type StartTestBridgeOptions, type HomeserverAddress } from './test-bridge';
export { createBridgeRegistration, newToken, registrationYaml, type BridgeRegistration, type BridgeRegistrationInput } from './bridge-registration';
export { ReceivedEvents, type ReceivedEvent, type ReceivedKind } from './received-events';
