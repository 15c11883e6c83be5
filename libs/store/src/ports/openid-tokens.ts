// OpenID tokens (client-server `/user/{userId}/openid/request_token`, federation `/openid/userinfo`): chat-sync
// issues them, ingress answers for them. Only a hash of each token is kept, so the store never holds a usable token.

export interface OpenIdTokenRecord {
  /** SHA-256 of the token, base64url. */
  tokenHash: string;
  userId: string;
  expiresTs: number;
}

export interface OpenIdTokenRepository {
  put(record: OpenIdTokenRecord): Promise<void>;
  /** The token's record while it has not expired at `now`. */
  findValid(tokenHash: string, now: number): Promise<OpenIdTokenRecord | undefined>;
  /** Removes tokens expired before `now`; returns how many. */
  purgeExpired(now: number): Promise<number>;
}
