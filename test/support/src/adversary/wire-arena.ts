// An embedded gateway and a malicious homeserver on loopback TLS, set up once per test file (jest's beforeAll /
// afterAll), with a bridge user to create rooms: the common ground of the over-the-wire adversarial suites.
import type { Store } from '@fedgate/store';
import type { TestBridge } from '../bridge';
import { startFedgate, openInstanceStore, type FedgateInstance } from '../fedgate';
import { createTestCa } from '../tls';
import { startTogether } from '../start-together';
import { MaliciousHttpsServer } from './malicious-https-server';

export interface WireArena {
  readonly fedgate: FedgateInstance;
  readonly evil: MaliciousHttpsServer;
  readonly store: Store;
  readonly bridge: TestBridge;
  /** A virtual user of the gateway's bridge, `<name>chat_alice`. */
  readonly alice: string;
}

/** Registers the set-up and tear-down hooks of the calling test file; the fields are there once beforeAll ran. */
export function useWireArena(name: string): WireArena {
  const arena = {} as { -readonly [K in keyof WireArena]: WireArena[K] };
  beforeAll(async () => {
    const ca = createTestCa();
    [arena.fedgate, arena.evil] = await startTogether([startFedgate({ shape: 'embedded', ca, name }), MaliciousHttpsServer.start(ca)] as const);
    arena.store = await openInstanceStore(arena.fedgate);
    arena.bridge = arena.fedgate.bridge!;
    arena.alice = await arena.bridge.registerVirtualUser(`${name}chat_alice`);
  }, 240_000);
  afterAll(async () => {
    await arena.store?.close();
    await arena.evil?.stop();
    await arena.fedgate?.destroy();
  }, 60_000);
  return arena;
}

/** Reads until `accept` holds or `timeoutMs` passed, then returns the last value read (the caller asserts on it). */
export async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value) || Date.now() > until) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
