export { FederationIngressModule } from './federation-ingress.module';
export { DEFAULT_INGRESS_OPTIONS, INGRESS_OPTIONS, type IngressOptions } from './ingress-options';
export { serverAclAllows } from './auth/server-acl';
export { RoomReads } from './rooms/room-reads';
export { DEFAULT_RATE_LIMIT, OriginRateLimiter, type RateLimitSettings } from './auth/origin-rate-limiter';
