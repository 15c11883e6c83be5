// Tells egress that a server just authenticated a request to us, so a backed-off queue to it can resume.
import { Inject, Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { BUS, BUS_TOPOLOGY, type Bus, type BusTopology } from '@fedgate/platform';
import { SERVICE_LOGGER } from '@fedgate/service-kit';
import type { Logger } from 'pino';
import { INGRESS_OPTIONS, type IngressOptions } from '../ingress-options';

@Injectable()
export class ServerUpSignal {
  private readonly lastSent = new LRUCache<string, number>({ max: 10_000 });

  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(INGRESS_OPTIONS) private readonly options: IngressOptions,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  /** At most one signal per server per interval; publishing never delays or fails the request. */
  seen(serverName: string, at = Date.now()): void {
    const last = this.lastSent.get(serverName);
    if (last !== undefined && at - last < this.options.serverUpIntervalMs) return;
    this.lastSent.set(serverName, at);
    const bucket = Math.floor(at / this.options.serverUpIntervalMs);
    this.bus
      .publish(this.topology.serverUp.subject, { serverName, at }, { messageId: `server-up:${serverName}:${bucket}` })
      .catch((err: unknown) => this.logger.warn({ err, serverName }, 'could not publish server-up'));
  }
}
