import { Module } from '@nestjs/common';
import { FederationDiscoveryController } from './federation-discovery.controller';

@Module({ controllers: [FederationDiscoveryController] })
export class FederationDiscoveryModule {}
