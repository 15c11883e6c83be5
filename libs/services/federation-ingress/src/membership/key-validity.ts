// The inviting server's check that the identity server key which signed a third-party invite is still valid
// (client-server spec, third-party invites: the inviter's server MUST check `key_validity_url`, the URL the
// room's m.room.third_party_invite gives, against the identity service's `/pubkey/isvalid`).
// Only this server checks it: the other servers of the room must not reject the invite on this ground.
import type { FedgateConfig } from '@fedgate/config';
import { isObject, thirdPartyInvitePublicKeys, verifyThirdPartyInviteSignature, type RoomEvent } from '@fedgate/room-state';
import { MatrixError } from '@fedgate/service-kit';

export type ThirdPartyInvitesSettings = FedgateConfig['thirdPartyInvites'];

/** Why an exchange was refused, for the request's audit record. */
export type KeyValidityRefusal = 'third_party_invite_key_untrusted' | 'third_party_invite_key_revoked' | 'third_party_invite_key_unchecked';

/** A refusal that says, beside its Matrix error, the audit reason. */
export class KeyValidityError extends MatrixError {
  constructor(
    status: number,
    errcode: string,
    message: string,
    readonly auditReason: KeyValidityRefusal,
  ) {
    super(status, errcode, message);
  }
}

/** One key of the invite with the URL to check it at; no URL means valid indefinitely (only in `public_keys`). */
interface InviteKey {
  publicKey: string;
  keyValidityUrl?: string;
}

function inviteKeys(invite: RoomEvent): InviteKey[] {
  const keys: InviteKey[] = [];
  const { public_key: legacyKey, key_validity_url: legacyUrl, public_keys: list } = invite.content;
  if (typeof legacyKey === 'string') keys.push({ publicKey: legacyKey, keyValidityUrl: typeof legacyUrl === 'string' ? legacyUrl : '' });
  if (Array.isArray(list)) {
    for (const entry of list) {
      if (!isObject(entry) || typeof entry.public_key !== 'string') continue;
      keys.push({ publicKey: entry.public_key, ...(entry.key_validity_url !== undefined ? { keyValidityUrl: typeof entry.key_validity_url === 'string' ? entry.key_validity_url : '' } : {}) });
    }
  }
  return keys;
}

export class KeyValidityChecker {
  constructor(
    private readonly settings: ThirdPartyInvitesSettings,
    private readonly fetchJson: typeof fetch = fetch,
  ) {}

  /**
   * Passes when the signature of `signed` verifies with a key of `invite` that is valid: one listed without a URL,
   * or one its identity server (a trusted one) says is valid. Throws a KeyValidityError otherwise.
   */
  async check(invite: RoomEvent, signed: Record<string, unknown>): Promise<void> {
    if (!verifyThirdPartyInviteSignature(signed, thirdPartyInvitePublicKeys(invite))) throw MatrixError.forbidden("The identity server's signature does not verify");
    const signing = [...new Map(inviteKeys(invite).map((key) => [`${key.publicKey} ${key.keyValidityUrl}`, key])).values()].filter((key) => verifyThirdPartyInviteSignature(signed, [key.publicKey]));
    if (signing.some((key) => key.keyValidityUrl === undefined)) return;
    let refusal: KeyValidityError | undefined;
    for (const key of signing) {
      try {
        if (await this.isValid(key.publicKey, key.keyValidityUrl!)) return;
        refusal = new KeyValidityError(403, 'M_FORBIDDEN', 'The identity server says the key that signed this third-party invite is no longer valid', 'third_party_invite_key_revoked');
      } catch (error) {
        if (!(error instanceof KeyValidityError)) throw error;
        refusal ??= error;
      }
    }
    throw refusal ?? MatrixError.forbidden("The identity server's signature does not verify");
  }

  private async isValid(publicKey: string, keyValidityUrl: string): Promise<boolean> {
    let url: URL;
    try {
      url = new URL(keyValidityUrl);
    } catch {
      throw new KeyValidityError(403, 'M_FORBIDDEN', `The third-party invite's key_validity_url ${JSON.stringify(keyValidityUrl)} is not a URL`, 'third_party_invite_key_untrusted');
    }
    const trusted = this.settings.identityServers.find((server) => server.serverName === url.host);
    if (!trusted || (url.protocol !== 'https:' && !trusted.baseUrl)) {
      throw new KeyValidityError(403, 'M_FORBIDDEN', `The third-party invite's key_validity_url is not at an identity server this server trusts (${url.host})`, 'third_party_invite_key_untrusted');
    }
    // The URL the invite gives, sent where the operator routes that identity server (its baseUrl) when set.
    const target = trusted.baseUrl ? new URL(`${url.pathname}${url.search}`, trusted.baseUrl) : url;
    target.searchParams.set('public_key', publicKey);
    const unchecked = (why: string) =>
      new KeyValidityError(502, 'M_UNKNOWN', `Could not check the third-party invite's key with ${trusted.serverName}: ${why}; try again later`, 'third_party_invite_key_unchecked');
    let answer: unknown;
    try {
      const response = await this.fetchJson(target, { redirect: 'error', signal: AbortSignal.timeout(this.settings.requestTimeoutMs), headers: { accept: 'application/json' } });
      if (!response.ok) throw unchecked(`HTTP ${response.status}`);
      answer = await response.json();
    } catch (error) {
      if (error instanceof KeyValidityError) throw error;
      throw unchecked((error as Error).name === 'TimeoutError' ? `no answer within ${this.settings.requestTimeoutMs} ms` : (error as Error).message);
    }
    if (!isObject(answer) || typeof answer.valid !== 'boolean') throw unchecked('its answer has no boolean "valid"');
    return answer.valid;
  }
}
