export * from './room-versions';
export * from './pdu';
