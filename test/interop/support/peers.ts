// One embedded fedgate (its TestBridge as the chat platform) and one Synapse on loopback, both with
// certificates from one test CA, plus the reads the interop scenarios compare on both sides.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Method, type MatrixClient } from 'matrix-js-sdk';
import { Agent, request } from 'undici';
import { createTestCa, startFedgate, startSynapse, startTogether, type FedgateInstance, type SynapseHandle, type TestBridge, type TestCertificateAuthority } from '@fedgate/testing';

export interface Peers {
  ca: TestCertificateAuthority;
  synapse: SynapseHandle;
  fedgate: FedgateInstance;
  bridge: TestBridge;
}

/** Synapse and an embedded fedgate, started side by side (one of each per test file). */
export async function startPeers(name: string, options: { synapseConfig?: Record<string, unknown>; synapseTrustsCaForHttpClient?: boolean; fedgateConfig?: Record<string, unknown>; bridgeMsc3202?: boolean } = {}): Promise<Peers> {
  const ca = createTestCa();
  const [synapse, fedgate] = await startTogether([
    // Synapse caches /sync answers for two minutes by default: the scenarios read fresh state each time.
    startSynapse({ ca, name: `interop-${name}`, extraConfig: { caches: { sync_response_cache_duration: 0 }, ...options.synapseConfig }, trustCaForHttpClient: options.synapseTrustsCaForHttpClient }),
    startFedgate({ shape: 'embedded', ca, name, config: options.fedgateConfig, bridgeMsc3202: options.bridgeMsc3202 }),
  ] as const);
  if (!fedgate.bridge) throw new Error('fedgate started without its bridge');
  return { ca, synapse, fedgate, bridge: fedgate.bridge };
}

/** Keeps fedgate's log beside Synapse's (test-results/ is ignored by git), then stops both. */
export async function stopPeers(name: string, peers: Partial<Peers>): Promise<void> {
  if (peers.fedgate) {
    const dir = path.join(__dirname, '..', '..', '..', 'test-results', 'interop');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `fedgate-${name}.log`), peers.fedgate.logs());
  }
  await Promise.all([peers.synapse?.stop(), peers.fedgate?.destroy()]);
}

export const WAIT_MS = 30_000;

/**
 * Matches only events that are not among those matching now: for "the next invite" when an earlier
 * one for the same user and room was received already. Call it before the action.
 */
export function fromNowOn(bridge: TestBridge, predicate: (e: Record<string, any>) => boolean): (e: Record<string, any>) => boolean {
  const before = new Set(bridge.received.events(predicate).map((e) => e.event_id as string));
  return (e) => predicate(e) && !before.has(e.event_id);
}

export const membershipIs = (userId: string, membership: string) => (e: Record<string, any>) =>
  e.type === 'm.room.member' && e.state_key === userId && e.content?.membership === membership;

/** Reads until `accept` holds or the time is up; errors count as "not yet". Returns the last value. */
export async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch((err: unknown) => err as T);
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** An event as a client of that server reads it, once it is there (undefined after the wait). */
export async function eventSeenBy(client: MatrixClient, roomId: string, eventId: string, timeoutMs = WAIT_MS): Promise<Record<string, any> | undefined> {
  const found = await eventually(
    () => client.fetchRoomEvent(roomId, eventId) as Promise<Record<string, any>>,
    (event) => typeof event === 'object' && event !== null && (event as { event_id?: string }).event_id === eventId,
    timeoutMs,
  );
  return (found as { event_id?: string })?.event_id === eventId ? found : undefined;
}

/** `type|state_key → event_id` of the room's current state, as that server reports it to this client. */
export async function currentStateIds(client: MatrixClient, roomId: string): Promise<Record<string, string>> {
  const events = (await client.roomState(roomId)) as unknown as Array<{ type: string; state_key: string; event_id: string }>;
  return Object.fromEntries(events.map((e) => [`${e.type}|${e.state_key}`, e.event_id] as const).sort(([x], [y]) => (x < y ? -1 : 1)));
}

/**
 * Waits until Synapse holds the room's full state. Synapse joins fedgate's rooms with partial state (fedgate
 * serves omit_members) and resyncs in the background; its `/members` answers only once that is done. A user of a
 * Synapse that leaves or is kicked before the resync ends keeps the room partial for good on Synapse, and that
 * user's full `/sync` then waits forever (Synapse 1.163.2; a Synapse resident refuses the resync's `/state_ids`
 * to a server no longer in the room, as fedgate does), so a scenario that changes a Synapse user's membership
 * right after a join waits for this first, as a client showing the member list would.
 */
export async function synapseHasFullState(client: MatrixClient, roomId: string): Promise<void> {
  await client.http.authedRequest(Method.Get, `/rooms/${encodeURIComponent(roomId)}/members`);
}

/** One initial /sync of a Synapse user (no filter, no wait): what that user's client would be shown. */
export async function initialSync(client: MatrixClient): Promise<Record<string, any>> {
  return client.http.authedRequest<Record<string, any>>(Method.Get, '/sync', { timeout: '0' });
}

/** A GET over federation TLS trusting only the test CA (no request signing: key and version endpoints). */
export async function federationGet(ca: TestCertificateAuthority, url: string): Promise<{ status: number; json: any }> {
  const dispatcher = new Agent({ connect: { ca: ca.certPem, servername: 'localhost' } });
  try {
    const res = await request(url, { dispatcher });
    return { status: res.statusCode, json: await res.body.json() };
  } finally {
    await dispatcher.close();
  }
}

/** Bodies of m.room.message events a client reads through /messages, oldest first. */
export async function timelineBodies(client: MatrixClient, roomId: string, limit = 100): Promise<string[]> {
  const page = await client.http.authedRequest<{ chunk: Array<Record<string, any>> }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/messages`, {
    dir: 'b',
    limit: String(limit),
  });
  return page.chunk
    .filter((e) => e.type === 'm.room.message')
    .map((e) => String(e.content?.body))
    .reverse();
}
