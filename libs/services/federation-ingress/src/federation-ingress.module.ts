import { Module } from '@nestjs/common';

/** Federation ingress: /_matrix/federation/* and /_matrix/key/* (discovery endpoints come from service-kit). */
@Module({})
export class FederationIngressModule {}
