import type { Collection, Document } from 'mongodb';
import type { DeviceListChangeEntry, DeviceListChangeKind, DeviceListRepository, RemoteDeviceList } from '../ports/device-lists';
import { isDuplicateKey, nextCounterValue } from './database';

const POSITION_COUNTER = 'device-list-changes';

const toEntry = (d: Document): DeviceListChangeEntry => ({
  position: d._id as number,
  userId: d.userId as string,
  kind: d.kind as DeviceListChangeKind,
  deviceId: (d.deviceId as string | null | undefined) ?? null,
  streamId: (d.streamId as number | null | undefined) ?? null,
});

/** Appends a change to the log, unannounced; the device-keys repository calls it after each stream move. */
export async function appendChange(changes: Collection<Document>, counters: Collection<Document>, userId: string, kind: DeviceListChangeKind, deviceId: string | null, streamId: number | null): Promise<number> {
  const position = await nextCounterValue(counters, POSITION_COUNTER);
  await changes.insertOne({ _id: position as never, userId, kind, deviceId, streamId, announced: false });
  return position;
}

/** Logs the `remote` change of a list written marked `mark`, then clears the mark (unless a newer write marked it again). */
async function finishRemoteLog(remoteLists: Collection<Document>, changes: Collection<Document>, counters: Collection<Document>, userId: string, mark: number): Promise<void> {
  await appendChange(changes, counters, userId, 'remote', null, null);
  await remoteLists.updateOne({ _id: userId as never, pendingLog: mark }, { $unset: { pendingLog: '' } });
}

/**
 * Logs the changes of remote lists written but not logged (a crash between), marked before `markedBefore`; answers
 * how many. A crash after the log entry but before the mark's removal logs the change twice: a second notice, no harm.
 */
export async function finishPendingRemoteLogs(remoteLists: Collection<Document>, changes: Collection<Document>, counters: Collection<Document>, markedBefore: number): Promise<number> {
  const marked = await remoteLists.find({ pendingLog: { $lt: markedBefore } }, { projection: { _id: 1, pendingLog: 1 } }).toArray();
  for (const d of marked) await finishRemoteLog(remoteLists, changes, counters, String(d._id), d.pendingLog as number);
  return marked.length;
}

export class MongoDeviceListRepository implements DeviceListRepository {
  constructor(
    private readonly changes: Collection<Document>,
    private readonly remoteLists: Collection<Document>,
    private readonly counters: Collection<Document>,
  ) {}

  recordChange(userId: string, kind: 'remote' | 'membership') {
    return appendChange(this.changes, this.counters, userId, kind, null, null);
  }

  async changesSince(position: number, limit: number) {
    return (await this.changes.find({ _id: { $gt: position as never } }).sort({ _id: 1 }).limit(limit).toArray()).map(toEntry);
  }

  async latestPosition() {
    const d = await this.counters.findOne({ _id: POSITION_COUNTER as never });
    return (d?.value as number | undefined) ?? 0;
  }

  async unannounced(limit: number) {
    return (await this.changes.find({ announced: false }).sort({ _id: 1 }).limit(limit).toArray()).map(toEntry);
  }

  async markAnnounced(position: number) {
    await this.changes.updateOne({ _id: position as never }, { $set: { announced: true } });
  }

  async remoteList(userId: string): Promise<RemoteDeviceList | null> {
    const d = await this.remoteLists.findOne({ _id: userId as never });
    if (!d) return null;
    return {
      userId,
      streamId: d.streamId as number,
      devices: JSON.parse(d.devices as string) as RemoteDeviceList['devices'],
      masterKey: typeof d.masterKey === 'string' ? (JSON.parse(d.masterKey) as RemoteDeviceList['masterKey']) : null,
      selfSigningKey: typeof d.selfSigningKey === 'string' ? (JSON.parse(d.selfSigningKey) as RemoteDeviceList['selfSigningKey']) : null,
      stale: d.stale === true,
      updatedTs: d.updatedTs as number,
    };
  }

  /**
   * With `logChange`, the list is written marked (`pendingLog`, in the same single-document write), then the change is
   * logged, then the mark cleared: no multi-document transactions here, and a crash between the list and its log
   * entry would otherwise lose the services' notice for good (the list written, a retry finds nothing to write).
   * `finishPendingRemoteLogs` (through the device keys' `finishPendingChanges`) logs what a crash left marked.
   */
  async replaceRemoteList(list: RemoteDeviceList, expected: { streamId: number; stale: boolean } | null, options: { logChange?: boolean } = {}) {
    const mark = options.logChange ? Date.now() : undefined;
    const written = await this.writeRemoteList(list, expected, mark);
    if (written && mark !== undefined) await finishRemoteLog(this.remoteLists, this.changes, this.counters, list.userId, mark);
    return written;
  }

  private async writeRemoteList(list: RemoteDeviceList, expected: { streamId: number; stale: boolean } | null, mark: number | undefined): Promise<boolean> {
    const fields: Document = {
      streamId: list.streamId,
      devices: JSON.stringify(list.devices),
      masterKey: list.masterKey ? JSON.stringify(list.masterKey) : null,
      selfSigningKey: list.selfSigningKey ? JSON.stringify(list.selfSigningKey) : null,
      stale: list.stale,
      updatedTs: list.updatedTs,
    };
    if (mark !== undefined) fields.pendingLog = mark;
    if (expected === null) {
      try {
        await this.remoteLists.insertOne({ _id: list.userId as never, ...fields });
        return true;
      } catch (error) {
        if (isDuplicateKey(error)) return false;
        throw error;
      }
    }
    const { modifiedCount } = await this.remoteLists.updateOne({ _id: list.userId as never, streamId: expected.streamId, stale: expected.stale }, { $set: fields });
    return modifiedCount === 1;
  }

  async staleRemoteUsers(limit: number) {
    return (await this.remoteLists.find({ stale: true }, { projection: { _id: 1 } }).sort({ updatedTs: 1 }).limit(limit).toArray()).map((d) => d._id as unknown as string);
  }
}
