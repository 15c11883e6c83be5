import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeBusContract } from './contract/bus-contract';
import { EmbeddedBus } from './embedded-bus';
import { busOptionsFor } from './options';

describeBusContract('embedded (SQLite)', async (topology) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-bus-'));
  const file = path.join(dir, 'bus.sqlite');
  const open = () => new EmbeddedBus({ ...busOptionsFor(topology), path: file, retryDelayMs: () => 1, pollIntervalMs: 20 });
  let bus = open();
  return {
    get bus() {
      return bus;
    },
    reopen: async () => {
      await bus.close();
      bus = open();
      return bus;
    },
    readStream: async (name) => bus.readStream(name),
    close: async () => {
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
