// The content repository as a Nest provider, for every service that serves media (chat-sync on the
// client-server listener, federation-ingress on the federation listener): the platform's store and
// federation client, bytes under `<dataDir>/media` (docs/adr: media storage).
import path from 'node:path';
import type { Provider } from '@nestjs/common';
import type { FedgateConfig } from '@fedgate/config';
import { FEDERATION_CLIENT, STORE, type FederationHttpClient, type Store } from '@fedgate/platform';
import { FEDGATE_CONFIG } from '@fedgate/service-kit';
import { FileBlobStore } from './blob-store';
import { ContentRepository } from './content-repository';
import { FederationMediaSource } from './remote-media';

export const CONTENT_REPOSITORY = Symbol.for('fedgate.content-repository');

export function mediaDirectory(config: FedgateConfig): string {
  return path.join(config.dataDir, 'media');
}

export const contentRepositoryProvider: Provider = {
  provide: CONTENT_REPOSITORY,
  // Without a federation client (a listener that only serves local media) remote media is not fetched.
  inject: [STORE, { token: FEDERATION_CLIENT, optional: true }, FEDGATE_CONFIG],
  useFactory: (store: Store, client: FederationHttpClient | undefined, config: FedgateConfig) => {
    const remote = client && new FederationMediaSource(client, { maxBytes: config.limits.maxUploadBytes, timeoutMs: config.egress?.requestTimeoutMs ?? 60_000 });
    return new ContentRepository(store.media, new FileBlobStore(mediaDirectory(config)), remote, { serverName: config.serverName, maxUploadBytes: config.limits.maxUploadBytes });
  },
};
