import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import type { FedgateConfig } from '@fedgate/config';
import { FEDGATE_CONFIG } from '@fedgate/service-kit';
import { AuditReasonInterceptor } from './audit/audit-reason.interceptor';
import { IngressAudit } from './audit/ingress-audit';
import { OriginRateLimitInterceptor } from './auth/origin-rate-limit.interceptor';
import { OriginRateLimiter } from './auth/origin-rate-limiter';
import { RoomAccess } from './auth/room-access';
import { ServerUpSignal } from './auth/server-up-signal';
import { XMatrixGuard } from './auth/x-matrix.guard';
import { DEFAULT_INGRESS_OPTIONS, INGRESS_OPTIONS, type IngressOptions } from './ingress-options';
import { KeyController } from './keys/key.controller';
import { UserKeysController } from './e2ee/user-keys.controller';
import { mediaControllers, mediaProviders } from './media';
import { MembershipController } from './membership/membership.controller';
import { StateResolverCommands } from './membership/state-resolver-commands';
import { ThirdPartyInviteController } from './membership/third-party-invite.controller';
import { ThirdPartyInvites } from './membership/third-party-invites';
import { OpenIdUserInfoController } from './query/openid-userinfo.controller';
import { PublicRooms } from './query/public-rooms';
import { QueryController } from './query/query.controller';
import { RoomReadController } from './reads/room-read.controller';
import { FederationHierarchyController } from './spaces/hierarchy.controller';
import { TimestampToEventController } from './reads/timestamp-to-event.controller';
import { TransactionController } from './send/transaction.controller';
import { IngressMetrics } from './send/ingress-metrics';
import { TransactionProcessor } from './send/transaction-processor';
import { ActivePolicy } from './governance/active-policy';
import { PolicyMetrics } from './governance/policy-metrics';
import { PolicyServerController, PolicyServerEnabledGuard } from './governance/policy-server.controller';
import { POLICY_SERVER_SETTINGS, policyServerSettings } from './governance/policy-server-settings';
import { PolicySigner } from './governance/policy-signer';
import { PolicyServerAcls } from './governance/policy-server-acls';

const controllers = [KeyController, TransactionController, RoomReadController, TimestampToEventController, OpenIdUserInfoController, ThirdPartyInviteController, MembershipController, QueryController, UserKeysController, FederationHierarchyController, PolicyServerController, ...mediaControllers];
/** The limiter with the configured limits (config first, then the module options), counting when it bites. */
const rateLimiterProvider: Provider = {
  provide: OriginRateLimiter,
  useFactory: (options: IngressOptions, metrics: IngressMetrics, config?: FedgateConfig) =>
    new OriginRateLimiter(config?.federation?.rateLimit ?? options.rateLimit, { onLimit: (outcome) => metrics.rateLimited.inc({ limit: outcome }) }),
  inject: [INGRESS_OPTIONS, IngressMetrics, { token: FEDGATE_CONFIG, optional: true }],
};

const services: Provider[] = [
  rateLimiterProvider,
  { provide: APP_INTERCEPTOR, useClass: OriginRateLimitInterceptor },
  IngressAudit,
  RoomAccess,
  ServerUpSignal,
  XMatrixGuard,
  AuditReasonInterceptor,
  TransactionProcessor,
  IngressMetrics,
  StateResolverCommands,
  ThirdPartyInvites,
  PublicRooms,
  ...mediaProviders,
  {
    provide: POLICY_SERVER_SETTINGS,
    useFactory: (options: IngressOptions, config?: FedgateConfig) => policyServerSettings(config, options.policyServer),
    inject: [INGRESS_OPTIONS, { token: FEDGATE_CONFIG, optional: true }],
  },
  ActivePolicy,
  PolicyMetrics,
  PolicySigner,
  PolicyServerEnabledGuard,
  PolicyServerAcls,
];

/**
 * Federation ingress on the federation HTTPS listener: /_matrix/federation/* (X-Matrix authenticated,
 * audited) and /_matrix/key/v2/*. Injects STORE, BUS, BUS_TOPOLOGY, SERVER_IDENTITY and KEY_RING from
 * @fedgate/platform and SERVICE_LOGGER from service-kit; /version and /.well-known come from service-kit.
 */
@Module({
  controllers,
  providers: [...services, { provide: INGRESS_OPTIONS, useValue: DEFAULT_INGRESS_OPTIONS }],
})
export class FederationIngressModule {
  /** The module with some defaults changed (tests: short intervals, small limits). */
  static withOptions(options: Partial<IngressOptions>): DynamicModule {
    return {
      module: FederationIngressModule,
      providers: [...services, { provide: INGRESS_OPTIONS, useValue: { ...DEFAULT_INGRESS_OPTIONS, ...options } }],
    };
  }
}
