import type { Collection, Document } from 'mongodb';
import type { OpenIdTokenRecord, OpenIdTokenRepository } from '../ports/openid-tokens';

/** `_id` = the token's hash. */
export class MongoOpenIdTokenRepository implements OpenIdTokenRepository {
  constructor(private readonly tokens: Collection<Document>) {}

  async put(record: OpenIdTokenRecord): Promise<void> {
    await this.tokens.insertOne({ _id: record.tokenHash as never, userId: record.userId, expiresTs: record.expiresTs });
  }

  async findValid(tokenHash: string, now: number): Promise<OpenIdTokenRecord | undefined> {
    const d = await this.tokens.findOne({ _id: tokenHash as never });
    return d && (d.expiresTs as number) > now ? { tokenHash, userId: d.userId as string, expiresTs: d.expiresTs as number } : undefined;
  }

  async purgeExpired(now: number): Promise<number> {
    return (await this.tokens.deleteMany({ expiresTs: { $lte: now } })).deletedCount;
  }
}
