export { FederationIngressModule } from './federation-ingress.module';
export { DEFAULT_INGRESS_OPTIONS, INGRESS_OPTIONS, type IngressOptions } from './ingress-options';
export { serverAclAllows } from './auth/server-acl';
export { RoomReads } from './rooms/room-reads';
export { MAX_PUBLIC_ROOMS_LIMIT, parsePublicRoomsBody, parsePublicRoomsQuery, PublicRooms, type PublicRoomsRequest } from './query/public-rooms';
