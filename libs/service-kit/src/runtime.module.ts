// What every service module can inject: the loaded config, the process logger, and whatever shared
// instances the process hands every app (in embedded mode: one bus, one store for all services).
import { type DynamicModule, Global, Module, type Provider, type Type } from '@nestjs/common';
import type { FedgateConfig } from '@fedgate/config';
import type { Logger } from 'pino';

/** Inject with `@Inject(FEDGATE_CONFIG) config: FedgateConfig`. */
export const FEDGATE_CONFIG = Symbol('FEDGATE_CONFIG');
/** Inject with `@Inject(SERVICE_LOGGER) logger: Logger` (pino). */
export const SERVICE_LOGGER = Symbol('SERVICE_LOGGER');

export interface ServiceRuntime {
  config: FedgateConfig;
  logger: Logger;
  /** Providers given to every app of the process, e.g. `{ provide: BUS, useValue: bus }`. */
  sharedProviders?: Provider[];
}

@Global()
@Module({})
export class ServiceRuntimeModule {
  static forRoot(runtime: ServiceRuntime): DynamicModule {
    const providers: Provider[] = [
      { provide: FEDGATE_CONFIG, useValue: runtime.config },
      { provide: SERVICE_LOGGER, useValue: runtime.logger },
      ...(runtime.sharedProviders ?? []),
    ];
    return {
      module: ServiceRuntimeModule,
      global: true,
      providers,
      exports: providers.map((provider) => (typeof provider === 'function' ? provider : provider.provide)),
    };
  }
}

@Module({})
class ServiceRootModule {}

/** The root module of one app: the runtime module plus the service's own modules. */
export function serviceRootModule(runtime: ServiceRuntime, modules: Array<Type<unknown> | DynamicModule>): DynamicModule {
  return { module: ServiceRootModule, imports: [ServiceRuntimeModule.forRoot(runtime), ...modules] };
}
