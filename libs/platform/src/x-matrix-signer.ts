import { buildXMatrixHeader } from '@fedgate/protocol';
import type { RequestSigner } from '@fedgate/federation-client';
import type { ServerIdentity } from './tokens';

/** Signs outbound federation requests as this server with its current key (X-Matrix). */
export function xMatrixRequestSigner(identity: ServerIdentity): RequestSigner {
  return (method, uri, destination, content) =>
    buildXMatrixHeader({ method, uri, origin: identity.serverName, destination, content }, identity.signingKey);
}
