// INTERIM KeyRing until the ingress helper's StoreKeyRing lands in @fedgate/federation-client: asks each
// server for its own keys (no notaries, no store cache), verifies the self-signed document, keeps it in
// memory until valid_until_ts. Our own keys are answered from the identity without a request.
import { verifyServerKeyDocument, type ServerKeys, type VerifyKey, type VerifyKeyLookup } from '@fedgate/protocol';
import type { FederationHttpClient, KeyRing, ServerKeyRequest } from '@fedgate/federation-client';
import type { ServerIdentity } from './tokens';

export class DirectFetchKeyRing implements KeyRing {
  private readonly cache = new Map<string, ServerKeys>();
  private readonly inFlight = new Map<string, Promise<ServerKeys | undefined>>();

  constructor(
    private readonly client: Pick<FederationHttpClient, 'fetchServerKeys'>,
    private readonly identity: ServerIdentity,
    private readonly now: () => number = Date.now,
  ) {}

  async prepare(requests: ServerKeyRequest[]): Promise<VerifyKeyLookup> {
    const known = new Map<string, ServerKeys>();
    await Promise.all(
      requests.map(async (request) => {
        if (request.serverName === this.identity.serverName) return;
        const keys = await this.keysFor(request);
        if (keys) known.set(request.serverName, keys);
      }),
    );
    return (serverName, keyId) => {
      if (serverName === this.identity.serverName) return this.ownKey(keyId);
      const keys = known.get(serverName);
      return keys?.verifyKeys.get(keyId) ?? keys?.oldVerifyKeys.get(keyId);
    };
  }

  private ownKey(keyId: string): VerifyKey | undefined {
    return this.identity.allKeys.find((key) => key.keyId === keyId)?.verifyKey();
  }

  private async keysFor(request: ServerKeyRequest): Promise<ServerKeys | undefined> {
    const cached = this.cache.get(request.serverName);
    const needed = request.minimumValidUntilTs ?? this.now();
    const hasIds = (keys: ServerKeys) => (request.keyIds ?? []).every((id) => keys.verifyKeys.has(id) || keys.oldVerifyKeys.has(id));
    if (cached && cached.validUntilTs >= needed && hasIds(cached)) return cached;
    let fetch = this.inFlight.get(request.serverName);
    if (!fetch) {
      fetch = this.fetch(request.serverName).finally(() => this.inFlight.delete(request.serverName));
      this.inFlight.set(request.serverName, fetch);
    }
    return (await fetch) ?? cached;
  }

  private async fetch(serverName: string): Promise<ServerKeys | undefined> {
    try {
      const fetchedAtTs = this.now();
      const keys = verifyServerKeyDocument(await this.client.fetchServerKeys(serverName), { serverName, fetchedAtTs });
      this.cache.set(serverName, keys);
      return keys;
    } catch {
      // Unreachable or bad document: the caller sees no key and refuses what needed it.
      return undefined;
    }
  }
}
