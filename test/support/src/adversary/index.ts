export * from './malicious-server';
export * from './malicious-https-server';
