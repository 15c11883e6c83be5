export * from './policy';
export * from './engine';
export * from './glob';
export * from './server-acl';
export { policySchema } from './policy-schema';
