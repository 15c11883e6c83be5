import { Module } from '@nestjs/common';

/** Federation egress: per-destination durable queues and transaction senders (bus consumers, no HTTP). */
@Module({})
export class FederationEgressModule {}
