// matrix-js-sdk clients for interop test drivers. Kept out of @fedgate/testing so suites that do not
// drive a Matrix client never load (and transform) the SDK.
import { createClient, Direction, type MatrixClient } from 'matrix-js-sdk';
import type { SynapseHandle, SynapseUser } from '@fedgate/testing';

type SdkLogger = NonNullable<Parameters<typeof createClient>[0]['logger']>;
const ignore = () => undefined;
const warningsOnly: SdkLogger = { trace: ignore, debug: ignore, info: ignore, warn: console.warn, error: console.error, getChild: () => warningsOnly };

/** A client on the server's plain-HTTP client listener; no sync loop is started. */
export function matrixClientFor(synapse: SynapseHandle, user: SynapseUser): MatrixClient {
  return createClient({ baseUrl: synapse.clientUrl, accessToken: user.accessToken, userId: user.userId, deviceId: user.deviceId, logger: warningsOnly });
}

/** Bodies of the room's m.room.message events, oldest first (up to 100). */
export async function messageBodies(client: MatrixClient, roomId: string): Promise<string[]> {
  const page = await client.createMessagesRequest(roomId, null, 100, Direction.Forward);
  return page.chunk.filter((event) => event.type === 'm.room.message').map((event) => String(event.content.body));
}

/** Reads until `accept` holds or the time is up, and returns the last value read (assert on it). */
export async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
