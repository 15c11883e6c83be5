import { contentRepositoryProvider } from '@fedgate/media';
import { LegacyMediaController, MediaUploadController } from './media.controller';
import { OptionalAppServiceAuthGuard } from './optional-auth.guard';

export const mediaControllers = [MediaUploadController, LegacyMediaController];
export const mediaProviders = [contentRepositoryProvider, OptionalAppServiceAuthGuard];
