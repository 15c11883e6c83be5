export * from './malicious-server';
