import { Module } from '@nestjs/common';

/** State resolver: per-room-partition consumers that authorize, resolve and persist events (no HTTP). */
@Module({})
export class StateResolverModule {}
