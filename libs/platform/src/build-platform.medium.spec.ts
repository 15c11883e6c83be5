// Distributed shape against the suite's real NATS JetStream and MongoDB-wire database.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { JetStreamBus } from '@fedgate/bus';
import { loadConfig } from '@fedgate/config';
import { generateSigningKey } from '@fedgate/protocol';
import { createLogger } from '@fedgate/service-kit';
import { buildPlatform, type Platform } from './build-platform';

describe('buildPlatform (distributed)', () => {
  let dir: string;
  const opened: Platform[] = [];
  beforeAll(async () => (dir = await mkdtemp(path.join(tmpdir(), 'fedgate-platform-'))));
  afterAll(async () => {
    for (const platform of opened) await platform.close();
    await rm(dir, { recursive: true, force: true });
  });

  const distributedConfig = (prefix: string, database: string) =>
    loadConfig({
      env: {},
      argv: [],
      cwd: dir,
      overrides: {
        serverName: 'd.example',
        mode: 'distributed',
        dataDir: dir,
        nats: { url: process.env.FEDGATE_TEST_NATS_URL },
        mongo: { url: process.env.FEDGATE_TEST_MONGO_URL, database },
        bus: { prefix },
      },
    });

  it('two processes of one deployment share the bus and the store; another prefix is another deployment', async () => {
    const key = generateSigningKey();
    const signingKey = { current: key, all: [key], created: false };
    const logger = createLogger('test', 'silent');
    const unique = randomBytes(4).toString('hex');
    const config = distributedConfig(`pl_${unique}`, `fedgate_platform_${unique}`);
    const first = await buildPlatform({ config, logger, signingKey });
    opened.push(first);
    const second = await buildPlatform({ config, logger, signingKey });
    opened.push(second);
    expect(first.bus).toBeInstanceOf(JetStreamBus);

    await first.store.audit.append({ direction: 'in', origin: 'x.example', destination: 'd.example', method: 'GET', path: '/p', ts: 1, durationMs: 0, status: 200, outcome: 'ok' });
    expect(await second.store.audit.query({ origin: 'x.example' })).toHaveLength(1);

    const roomId = '!room:d.example';
    const delivered = new Promise<unknown>((resolve) => {
      void second.bus.consume(second.topology.consumers.egressRoomLog(second.topology.roomLog.partitionOf(roomId)), (message) => resolve(message.data));
    });
    await first.bus.publish(first.topology.roomLog.subjectFor(roomId), { eventId: '$e' } as never, { messageId: '$e' });
    expect(await delivered).toEqual({ eventId: '$e' });

    const other = await buildPlatform({ config: distributedConfig(`pl_other_${unique}`, `fedgate_platform_${unique}`), logger, signingKey });
    opened.push(other);
    expect(other.topology.streams.roomLog.name).not.toBe(first.topology.streams.roomLog.name);
  }, 60_000);
});
