// @fedgate/room-state: pure room state — authorization, auth chains, state resolution, DAG helpers, replay.
export * from './event';
export * from './power-levels';
export * from './auth-types';
export * from './authorize';
export * from './auth-chain';
export * from './dag';
export * from './state-res-v2';
export * from './state-res-v1';
export * from './resolve';
export { ForeignEventError } from './room-guard';
export * from './soft-fail';
export * from './replay';
export { verifyThirdPartyInviteSignature, thirdPartyInvitePublicKeys } from './third-party-invite';
export * from './history-visibility';
export * from './space-hierarchy';
export * from './policy-server/room-policy-server';
