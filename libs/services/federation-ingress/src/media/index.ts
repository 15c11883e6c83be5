import { contentRepositoryProvider } from '@fedgate/media';
import { FederationMediaController } from './federation-media.controller';

export const mediaControllers = [FederationMediaController];
export const mediaProviders = [contentRepositoryProvider];
