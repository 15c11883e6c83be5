export * from './ports/events';
export * from './ports/state';
export * from './ports/rooms';
export * from './ports/federation';
export * from './ports/platform';
export * from './ports/audit';
export * from './ports/store';
export { diffStates, MAX_SNAPSHOT_CHAIN } from './shared/snapshots';
export { openSqliteStore } from './sqlite/store';
