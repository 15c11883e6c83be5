// Issue 15: Rocket.Chat's bridge library (its matrix-appservice 0.10 reads the hs_token only from
// ?access_token=) registered without fedgate's legacy option refuses every push with 403 M_FORBIDDEN.
// That must be loud — error log with status and errcode, metric, audit record, and the AS ping reporting
// the failing push state — and lose nothing: once the operator sets use_appservice_legacy_authorization
// and restarts, every queued event arrives exactly once, in order, and the signals say delivery resumed.
// A bridge that refuses again later is reported again and served by the next retry once it accepts.
import { createTestCa, openInstanceStore, startFedgate, type FedgateInstance } from '@fedgate/testing';
import { LibraryBridge, type LibraryIntent } from '../support/src/bridge/library-bridge';

jest.setTimeout(120_000);
const WAIT_MS = 30_000;

async function until<T>(read: () => Promise<T>, accept: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${WAIT_MS} ms; last: ${JSON.stringify(value).slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('Rocket.Chat bridge library registered without the legacy token option', () => {
  let fedgate: FedgateInstance;
  let bridge: LibraryBridge;
  let alice: LibraryIntent;
  let roomId: string;
  const sent: string[] = [];

  beforeAll(async () => {
    bridge = await LibraryBridge.prepare({ library: 'rocketchat', id: 'rocketchat-refused', prefix: 'rc', catchAllNamespaces: true, legacyAuthorization: false });
    fedgate = await startFedgate({
      shape: 'embedded',
      ca: createTestCa(),
      name: 'refused',
      bridgePrefix: false,
      config: { appServices: { registrationFiles: [bridge.registrationPath] }, rooms: { defaultVersion: '10' } },
    });
    await bridge.start({ homeserverUrl: fedgate.clientServerUrl, domain: fedgate.serverName });
    alice = bridge.intent(`@rc_alice:${fedgate.serverName}`);
  });

  afterAll(async () => {
    await bridge?.stop();
    await fedgate?.destroy();
  });

  const ping = async () => {
    const response = await fetch(`${fedgate.clientServerUrl}/_matrix/client/v1/appservice/${bridge.registration.id}/ping`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bridge.registration.as_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ transaction_id: 'operator-check' }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const metrics = async () => (await fetch(`${fedgate.clientServerUrl}/metrics`)).text();
  const pushAudit = async () => {
    const store = await openInstanceStore(fedgate);
    try {
      return await store.audit.query({ direction: 'out', destination: `appservice:${bridge.registration.id}` });
    } finally {
      await store.close();
    }
  };

  it('the bridge works as a client, but every push is refused: error log with status and errcode, metric, audit record, ping reports failing', async () => {
    await alice.ensureRegistered();
    ({ room_id: roomId } = await alice.createRoom({ createAsClient: true, options: { preset: 'public_chat', name: 'Queued' } }));
    for (const body of ['one', 'two', 'three']) sent.push((await alice.sendText(roomId, body)).event_id);

    const failures = await until(metrics, (text) => /fedgate_appservice_push_failures_total\{[^}]*appservice="rocketchat-refused",status="403",errcode="M_FORBIDDEN"[^}]*\} [1-9]/.test(text), 'failure counter');
    expect(failures).toMatch(/fedgate_appservice_push_failing\{[^}]*appservice="rocketchat-refused"[^}]*\} 1/);
    const logLine = fedgate
      .logs()
      .split('\n')
      .map((line) => line.slice(line.indexOf('{')))
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((entry) => entry.level === 50 && entry.appService === 'rocketchat-refused');
    expect(logLine).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN', msg: expect.stringMatching(/refused/) });
    const [newest] = await pushAudit();
    expect(newest).toMatchObject({ status: 403, outcome: 'rejected', reason: 'M_FORBIDDEN', txnId: expect.any(String) });

    const answer = await ping();
    expect(answer.body['org.fedgate.push']).toMatchObject({ state: 'failing', last_status: 403, last_errcode: 'M_FORBIDDEN' });
    expect(answer.body['org.fedgate.push'].pending).toBeGreaterThanOrEqual(sent.length);
    expect(bridge.received.events()).toEqual([]);
  });

  it('with use_appservice_legacy_authorization set and fedgate restarted, everything queued arrives exactly once, in order, and the signals say so', async () => {
    await bridge.setLegacyAuthorization(true);
    await fedgate.restart();
    await bridge.received.waitForEvent((e) => e.event_id === sent.at(-1), WAIT_MS);
    const later = await alice.sendText(roomId, 'four');
    await bridge.received.waitForEvent((e) => e.event_id === later.event_id, WAIT_MS);

    const inRoom = bridge.received.events((e) => e.room_id === roomId);
    expect(inRoom[0]).toMatchObject({ type: 'm.room.create', content: { creator: alice.userId } });
    expect(inRoom.filter((e) => e.type === 'm.room.message').map((e) => e.content.body)).toEqual(['one', 'two', 'three', 'four']);
    expect(bridge.duplicateEventIds()).toEqual([]);

    const [newest] = await pushAudit();
    expect(newest).toMatchObject({ outcome: 'ok', reason: 'delivery_resumed' });
    const answer = await ping();
    expect(answer.body['org.fedgate.push']).toMatchObject({ state: 'ok', pending: 0 });
    expect(await metrics()).toMatch(/fedgate_appservice_push_failing\{[^}]*appservice="rocketchat-refused"[^}]*\} 0/);
  });

  it('a bridge that starts refusing again (its token changed) is reported again, and the retry after it accepts delivers without a restart', async () => {
    bridge.appService.setHomeserverToken('not-the-registered-token');
    const refused = await alice.sendText(roomId, 'five');
    await until(ping, (answer) => answer.body['org.fedgate.push']?.state === 'failing', 'ping reporting failing');
    expect(bridge.received.events((e) => e.event_id === refused.event_id)).toEqual([]);

    bridge.appService.setHomeserverToken(bridge.registration.hs_token);
    await bridge.received.waitForEvent((e) => e.event_id === refused.event_id, WAIT_MS);
    await until(ping, (answer) => answer.body['org.fedgate.push']?.state === 'ok', 'ping reporting ok');
    expect(bridge.received.events((e) => e.room_id === roomId && e.type === 'm.room.message').map((e) => e.content.body)).toEqual(['one', 'two', 'three', 'four', 'five']);
    expect(bridge.duplicateEventIds()).toEqual([]);
  });
});
