import type { Collection, Document } from 'mongodb';
import { canonicalJson } from '@fedgate/protocol';
import { keyAlgorithm, type ClaimedKey, type DeviceKeyRepository, type DeviceRecord, type KeyObject } from '../ports/device-keys';
import { compoundId, isDuplicateKey, nextCounterValue } from './database';
import { appendChange, finishPendingRemoteLogs } from './device-lists';

// Keys are kept as canonical JSON strings (their own keys hold colons and come from clients).
const CLAIM_BATCH = 8;
const streamCounter = (userId: string): string => `device-list:${userId}`;

const toRecord = (d: Document): DeviceRecord => ({
  userId: d.userId as string,
  deviceId: d.deviceId as string,
  displayName: (d.displayName as string | null | undefined) ?? null,
  keys: typeof d.keys === 'string' ? (JSON.parse(d.keys) as KeyObject) : null,
  createdTs: d.createdTs as number,
});

export class MongoDeviceKeyRepository implements DeviceKeyRepository {
  constructor(
    private readonly devices: Collection<Document>,
    private readonly oneTimeKeys: Collection<Document>,
    private readonly fallbackKeys: Collection<Document>,
    private readonly crossSigningKeysCollection: Collection<Document>,
    private readonly counters: Collection<Document>,
    private readonly changes: Collection<Document>,
    private readonly userSignatures: Collection<Document>,
    /** Other servers' users' device lists: a list written but its change not logged is finished here too. */
    private readonly remoteLists?: Collection<Document>,
  ) {}

  /**
   * Moves the user's stream id, then logs the change (the EDU's outbox). No multi-document transactions
   * here: each change first marks its document (`pending`, in the same single-document write as the change
   * itself), then moves the stream and logs, then clears the mark; `finishPendingChanges` completes the
   * marked ones a crash cut short.
   */
  private async bump(userId: string, deviceId: string | null): Promise<number> {
    const streamId = await nextCounterValue(this.counters, streamCounter(userId));
    await appendChange(this.changes, this.counters, userId, deviceId === null ? 'signing' : 'device', deviceId, streamId);
    return streamId;
  }

  private async finishChange(userId: string, deviceId: string): Promise<number> {
    const streamId = await this.bump(userId, deviceId);
    await this.devices.updateOne({ _id: compoundId(userId, deviceId) as never, 'pending.kind': 'change' }, { $unset: { pending: '' } });
    return streamId;
  }

  private async finishDelete(userId: string, deviceId: string): Promise<number> {
    // Keys go even when the device was already gone: a crash between the writes leaves none behind on retry.
    await this.oneTimeKeys.deleteMany({ userId, deviceId });
    await this.fallbackKeys.deleteMany({ userId, deviceId });
    const streamId = await this.bump(userId, deviceId);
    await this.devices.deleteOne({ _id: compoundId(userId, deviceId) as never, 'pending.kind': 'delete' });
    return streamId;
  }

  async finishPendingChanges(markedBefore = Date.now()) {
    let finished = 0;
    for (const d of await this.devices.find({ 'pending.since': { $lt: markedBefore } }).toArray()) {
      const { userId, deviceId } = d as unknown as { userId: string; deviceId: string };
      if ((d.pending as { kind: string }).kind === 'delete') await this.finishDelete(userId, deviceId);
      else await this.finishChange(userId, deviceId);
      finished++;
    }
    for (const d of await this.crossSigningKeysCollection.find({ 'pending.since': { $lt: markedBefore } }).toArray()) {
      await this.bump(d.userId as string, null);
      await this.crossSigningKeysCollection.updateOne({ _id: d._id }, { $unset: { pending: '' } });
      finished++;
    }
    if (this.remoteLists) finished += await finishPendingRemoteLogs(this.remoteLists, this.changes, this.counters, markedBefore);
    return finished;
  }

  async putDevice(userId: string, deviceId: string, displayName?: string | null, now = Date.now()) {
    const _id = compoundId(userId, deviceId) as never;
    try {
      const inserted = await this.devices.updateOne(
        { _id },
        { $setOnInsert: { userId, deviceId, displayName: displayName ?? null, keys: null, createdTs: now, pending: { kind: 'change', since: Date.now() } } },
        { upsert: true },
      );
      if (inserted.upsertedCount === 1) return { created: true, changed: true, streamId: await this.finishChange(userId, deviceId) };
    } catch (error) {
      // Two creators at once: the other one inserted it.
      if (!isDuplicateKey(error)) throw error;
    }
    if (displayName !== undefined) {
      const renamed = await this.devices.updateOne({ _id, displayName: { $ne: displayName }, 'pending.kind': { $ne: 'delete' } }, { $set: { displayName, pending: { kind: 'change', since: Date.now() } } });
      if (renamed.modifiedCount === 1) return { created: false, changed: true, streamId: await this.finishChange(userId, deviceId) };
    }
    return { created: false, changed: false, streamId: await this.deviceListStreamId(userId) };
  }

  // A device being deleted (marked, a crash before its delete finished) is gone already for readers.
  async getDevice(userId: string, deviceId: string) {
    const d = await this.devices.findOne({ _id: compoundId(userId, deviceId) as never, 'pending.kind': { $ne: 'delete' } });
    return d ? toRecord(d) : null;
  }

  async listDevices(userId: string) {
    const docs = await this.devices.find({ userId, 'pending.kind': { $ne: 'delete' } }).toArray();
    return docs.map(toRecord).sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  }

  async deleteDevice(userId: string, deviceId: string) {
    const marked = await this.devices.updateOne({ _id: compoundId(userId, deviceId) as never, 'pending.kind': { $ne: 'delete' } }, { $set: { pending: { kind: 'delete', since: Date.now() } } });
    if (marked.modifiedCount === 1) return { deleted: true, streamId: await this.finishDelete(userId, deviceId) };
    await this.oneTimeKeys.deleteMany({ userId, deviceId });
    await this.fallbackKeys.deleteMany({ userId, deviceId });
    return { deleted: false, streamId: await this.deviceListStreamId(userId) };
  }

  async setDeviceKeys(userId: string, deviceId: string, keys: KeyObject) {
    const _id = compoundId(userId, deviceId) as never;
    const text = canonicalJson(keys);
    const updated = await this.devices.updateOne({ _id, keys: { $ne: text }, 'pending.kind': { $ne: 'delete' } }, { $set: { keys: text, pending: { kind: 'change', since: Date.now() } } });
    if (updated.modifiedCount === 1) return { found: true, changed: true, streamId: await this.finishChange(userId, deviceId) };
    const found = updated.matchedCount === 1 || (await this.devices.countDocuments({ _id }, { limit: 1 })) === 1;
    return { found, changed: false, streamId: await this.deviceListStreamId(userId) };
  }

  async addOneTimeKeys(userId: string, deviceId: string, keys: Record<string, unknown>) {
    const conflicts: string[] = [];
    for (const [keyId, key] of Object.entries(keys)) {
      const text = canonicalJson(key);
      const _id = compoundId(userId, deviceId, keyId) as never;
      try {
        await this.oneTimeKeys.insertOne({ _id, userId, deviceId, keyId, algorithm: keyAlgorithm(keyId), key: text });
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        const held = await this.oneTimeKeys.findOne({ _id });
        if (held && held.key !== text) conflicts.push(keyId);
      }
    }
    return { conflicts };
  }

  async countOneTimeKeys(userId: string, deviceId: string) {
    const counts: Record<string, number> = {};
    for await (const d of this.oneTimeKeys.find({ userId, deviceId }, { projection: { algorithm: 1 } })) {
      const algorithm = d.algorithm as string;
      counts[algorithm] = (counts[algorithm] ?? 0) + 1;
    }
    return counts;
  }

  async setFallbackKeys(userId: string, deviceId: string, keys: Record<string, unknown>) {
    for (const [keyId, key] of Object.entries(keys)) {
      const algorithm = keyAlgorithm(keyId);
      await this.fallbackKeys.updateOne(
        { _id: compoundId(userId, deviceId, algorithm) as never },
        { $set: { userId, deviceId, algorithm, keyId, key: canonicalJson(key), used: false } },
        { upsert: true },
      );
    }
  }

  async unusedFallbackKeyAlgorithms(userId: string, deviceId: string) {
    const docs = await this.fallbackKeys.find({ userId, deviceId, used: false }).toArray();
    return docs.map((d) => d.algorithm as string).sort();
  }

  async claimKey(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | null> {
    // The claim is the delete by _id: only one claimer's deleteOne removes the document. (FerretDB's
    // findOneAndDelete handed the same key to concurrent claimers.) A loser tries the next key.
    for (;;) {
      const candidates = await this.oneTimeKeys.find({ userId, deviceId, algorithm }).sort({ keyId: 1 }).limit(CLAIM_BATCH).toArray();
      if (candidates.length === 0) break;
      for (const candidate of candidates) {
        const { deletedCount } = await this.oneTimeKeys.deleteOne({ _id: candidate._id });
        if (deletedCount === 1) return { keyId: candidate.keyId as string, key: JSON.parse(candidate.key as string) as unknown, fallback: false };
      }
    }
    const fallback = await this.fallbackKeys.findOneAndUpdate({ _id: compoundId(userId, deviceId, algorithm) as never }, { $set: { used: true } }, { returnDocument: 'after' });
    if (!fallback) return null;
    return { keyId: fallback.keyId as string, key: JSON.parse(fallback.key as string) as unknown, fallback: true };
  }

  async setCrossSigningKey(userId: string, usage: string, key: KeyObject) {
    const _id = compoundId(userId, usage) as never;
    await this.crossSigningKeysCollection.updateOne({ _id }, { $set: { userId, usage, key: canonicalJson(key), pending: { since: Date.now() } } }, { upsert: true });
    const streamId = await this.bump(userId, null);
    await this.crossSigningKeysCollection.updateOne({ _id }, { $unset: { pending: '' } });
    return { streamId };
  }

  async crossSigningKeys(userId: string) {
    const docs = await this.crossSigningKeysCollection.find({ userId }).toArray();
    return Object.fromEntries(docs.map((d) => [d.usage as string, JSON.parse(d.key as string) as KeyObject]));
  }

  async addUserSigningSignature(signer: string, target: string, keyId: string, signature: string) {
    await this.userSignatures.updateOne({ _id: compoundId(signer, target, keyId) as never }, { $set: { signer, target, keyId, signature } }, { upsert: true });
  }

  async userSigningSignatures(signer: string, target: string) {
    const docs = await this.userSignatures.find({ signer, target }).toArray();
    return Object.fromEntries(docs.map((d) => [d.keyId as string, d.signature as string]));
  }

  async deviceListStreamId(userId: string) {
    const d = await this.counters.findOne({ _id: streamCounter(userId) as never });
    return (d?.value as number | undefined) ?? 0;
  }
}
