// Account data of the application service's users (client-server "Client Config"), global and per room,
// and what is kept there on the user's behalf: room tags (`m.tag`) and the fully-read marker
// (`m.fully_read`, set only through `/read_markers` or a `m.fully_read` receipt). Each user may act only on
// their own; sizes are bounded so one user cannot fill the store.
import { Inject, Injectable } from '@nestjs/common';
import { STORE, type Store } from '@fedgate/platform';
import type { JsonObject } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import type { Requester } from '../client-server/requester';
import { assertRoomId } from '../rooms/room-actions';

/** The most one entry's content may weigh, as JSON. */
export const MAX_ACCOUNT_DATA_BYTES = 64 * 1024;
/** The most entries (global and per room together) one user may keep. */
export const MAX_ACCOUNT_DATA_ENTRIES = 1000;
const MAX_TYPE_LENGTH = 255;
/** Types the server keeps itself: clients may read them, not write them. */
const SERVER_CONTROLLED = new Set(['m.fully_read', 'm.push_rules']);

@Injectable()
export class AccountData {
  constructor(@Inject(STORE) private readonly store: Store) {}

  async get(requester: Requester, userId: string, roomId: string | null, type: string): Promise<JsonObject> {
    this.assertOwn(requester, userId, 'read');
    this.assertAddress(roomId, type);
    const entry = await this.store.accountData.get(userId, roomId, type);
    if (!entry) throw MatrixError.notFound('Account data not found.');
    return entry.content;
  }

  async putByClient(requester: Requester, userId: string, roomId: string | null, type: string, body: unknown): Promise<void> {
    this.assertOwn(requester, userId, 'add');
    this.assertAddress(roomId, type);
    if (SERVER_CONTROLLED.has(type)) throw new MatrixError(405, 'M_BAD_JSON', `Cannot set ${type} through this API; it is controlled by the server.`);
    await this.put(userId, roomId, type, asContent(body));
  }

  /**
   * Sets an entry, bounded in size. The number of entries is bounded for what clients set; the server's own
   * markers (`m.fully_read`, one per room the user is joined to, set only by `/read_markers`) are neither bounded by
   * it nor counted in it, so a user in many rooms keeps a marker in each and their own entries too.
   */
  async put(userId: string, roomId: string | null, type: string, content: JsonObject): Promise<void> {
    if (Buffer.byteLength(JSON.stringify(content), 'utf8') > MAX_ACCOUNT_DATA_BYTES) throw MatrixError.tooLarge(`Account data content is over ${MAX_ACCOUNT_DATA_BYTES} bytes`);
    const exists = (await this.store.accountData.get(userId, roomId, type)) !== undefined;
    if (!exists && !SERVER_CONTROLLED.has(type) && (await this.store.accountData.countForUser(userId, [...SERVER_CONTROLLED])) >= MAX_ACCOUNT_DATA_ENTRIES) {
      throw new MatrixError(403, 'M_RESOURCE_LIMIT_EXCEEDED', `A user may keep at most ${MAX_ACCOUNT_DATA_ENTRIES} account data entries`, { limit_type: 'account_data' });
    }
    await this.store.accountData.put({ userId, roomId, type, content, updatedTs: Date.now() });
  }

  async tags(requester: Requester, userId: string, roomId: string): Promise<{ tags: JsonObject }> {
    this.assertOwn(requester, userId, 'read');
    assertRoomId(roomId);
    return { tags: await this.currentTags(userId, roomId) };
  }

  async setTag(requester: Requester, userId: string, roomId: string, tag: string, body: unknown): Promise<void> {
    this.assertOwn(requester, userId, 'add');
    assertRoomId(roomId);
    assertTagName(tag);
    const fields = asContent(body);
    if (fields.order !== undefined && (typeof fields.order !== 'number' || fields.order < 0 || fields.order > 1)) throw MatrixError.badJson('order must be a number between 0 and 1');
    const tags = await this.currentTags(userId, roomId);
    await this.put(userId, roomId, 'm.tag', { tags: { ...tags, [tag]: fields } });
  }

  async deleteTag(requester: Requester, userId: string, roomId: string, tag: string): Promise<void> {
    this.assertOwn(requester, userId, 'add');
    assertRoomId(roomId);
    assertTagName(tag);
    const tags = await this.currentTags(userId, roomId);
    if (!(tag in tags)) return;
    delete tags[tag];
    await this.put(userId, roomId, 'm.tag', { tags });
  }

  private async currentTags(userId: string, roomId: string): Promise<JsonObject> {
    const tags = (await this.store.accountData.get(userId, roomId, 'm.tag'))?.content.tags;
    return typeof tags === 'object' && tags !== null && !Array.isArray(tags) ? { ...(tags as JsonObject) } : {};
  }

  /** One user's account data is theirs alone, whichever application service asks. */
  private assertOwn(requester: Requester, userId: string, verb: 'add' | 'read'): void {
    if (userId !== requester.userId) throw MatrixError.forbidden(`Cannot ${verb} account data for other users.`);
  }

  private assertAddress(roomId: string | null, type: string): void {
    if (roomId !== null) assertRoomId(roomId);
    if (type.length === 0 || type.length > MAX_TYPE_LENGTH) throw MatrixError.invalidParam(`The account data type must be 1 to ${MAX_TYPE_LENGTH} characters`);
  }
}

function asContent(body: unknown): JsonObject {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Buffer.isBuffer(body)) throw MatrixError.badJson('Content must be a JSON object.');
  return body as JsonObject;
}

function assertTagName(tag: string): void {
  if (tag.length === 0 || Buffer.byteLength(tag, 'utf8') > MAX_TYPE_LENGTH) throw MatrixError.invalidParam(`A tag name must be 1 to ${MAX_TYPE_LENGTH} bytes`);
}
