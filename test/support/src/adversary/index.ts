export * from './malicious-server';
export * from './malicious-https-server';
export * from './wire-arena';
