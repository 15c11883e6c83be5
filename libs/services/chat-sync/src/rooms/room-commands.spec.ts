// Issue 11 defect 4: a command the room service does not answer in its declared time is a retryable
// Matrix error (504), not a request hanging for ever (embedded bus) or a flat 502.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { busOptionsFor, busTopology, EmbeddedBus, type BusSubscription } from '@fedgate/bus';
import { MatrixError } from '@fedgate/service-kit';
import { RoomCommands } from './room-commands';

describe('RoomCommands when the room service is slow or absent', () => {
  let dir: string;
  let bus: EmbeddedBus;
  let served: BusSubscription | undefined;
  const topology = busTopology({ prefix: 'room-commands', roomPartitions: 2, commandTimeoutsMs: { createEvent: 200 } });

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'room-commands-'));
    bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite'), pollIntervalMs: 20 });
    await bus.start();
  });
  afterEach(async () => {
    await served?.stop();
    served = undefined;
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const command = { roomId: '!r:x', sender: '@u:x', type: 'm.room.message', content: {}, txnId: 't1' };

  it('defect 4: answers 504 M_UNKNOWN once the command\'s declared timeout passed, naming the timeout', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    served = await bus.serve(topology.createEvent.command, async () => {
      await held;
      return { ok: true as const, eventId: '$late' };
    });
    const failure = await new RoomCommands(bus, topology).createEvent(command).catch((error: unknown) => error);
    release();
    expect(failure).toBeInstanceOf(MatrixError);
    expect(failure).toMatchObject({ status: 504, errcode: 'M_UNKNOWN', error: expect.stringMatching(/within 200 ms/) });
  });

  it('defect 4: answers 503 when no room service is there', async () => {
    await expect(new RoomCommands(bus, topology).createEvent(command)).rejects.toMatchObject({ status: 503, errcode: 'M_UNKNOWN' });
  });

  it("a policy server's refusal reaches the client as it gave it, a rate limit with its retry_after_ms", async () => {
    served = await bus.serve(topology.createEvent.command, async () => ({ ok: false as const, errcode: 'M_LIMIT_EXCEEDED', error: 'slow down', status: 429, retry_after_ms: 1500 }) as never);
    const failure = (await new RoomCommands(bus, topology).createEvent(command).catch((error: unknown) => error)) as MatrixError;
    expect(failure).toBeInstanceOf(MatrixError);
    expect({ status: failure.status, body: failure.toBody() }).toEqual({ status: 429, body: { errcode: 'M_LIMIT_EXCEEDED', error: 'slow down', retry_after_ms: 1500 } });
  });
});
