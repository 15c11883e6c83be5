// Issue 19, idle memory of the embedded gateway: what it loads and sizes at start. Before the fix `npm start`
// loaded the MongoDB driver (whose BSON module allocates a 17 MiB buffer on load), NATS, sharp with its native
// libvips, node-forge and the OTLP exporter, none of which an embedded gateway uses at start; and the young
// generation was 2 × 16 MiB. Then (idle-rss): Nest's logger built an Intl.DateTimeFormat at load (V8 then read every
// ICU locale: ~5 MiB of the binary's pages), and the start-up's garbage stayed mapped (~25 MiB) for want of a
// memory-reducing collection. All counted, not timed: RSS figures are in docs/benchmarks.md.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestCa, startFedgate, type FedgateInstance } from '@fedgate/testing';

const probe = path.join(__dirname, 'fixtures', 'loaded-modules-probe.cjs');

/** Packages only some paths need: the distributed shape's store and bus, thumbnails, first-start certificates, trace export. */
const loadedOnlyWhenUsed = ['mongodb', 'bson', '@nats-io/', 'sharp', '@img/', 'node-forge', '@opentelemetry/exporter-trace-otlp-http'];

interface ProbeReport {
  modules: string[];
  newSpaceBytes: number | null;
  /** Intl.DateTimeFormat instances built so far. */
  dateTimeFormats: number;
  /** The young generation's size when the ready line was written. */
  readyNewSpaceBytes: number | null;
}

describe('embedded gateway at idle (issue 19)', () => {
  let gateway: FedgateInstance | undefined;
  let dir: string;
  let report: ProbeReport;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fedgate-idle-'));
    const reportFile = path.join(dir, 'loaded-modules.json');
    const saved = { options: process.env.NODE_OPTIONS, file: process.env.FEDGATE_TEST_LOADED_MODULES_FILE };
    process.env.NODE_OPTIONS = `--require=${probe}`;
    process.env.FEDGATE_TEST_LOADED_MODULES_FILE = reportFile;
    try {
      gateway = await startFedgate({ shape: 'embedded', ca: createTestCa(), name: 'idle', bridgePrefix: 'idlechat', logLevel: 'warn' });
    } finally {
      if (saved.options === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved.options;
      if (saved.file === undefined) delete process.env.FEDGATE_TEST_LOADED_MODULES_FILE;
      else process.env.FEDGATE_TEST_LOADED_MODULES_FILE = saved.file;
    }
    // What the load test's idle row measures: started, one room created by the bridge, nothing sent.
    const bridge = gateway.bridge!;
    const host = await bridge.registerVirtualUser('idlechat_host');
    await bridge.asUser(host).createRoom({ preset: 'public_chat' as never });
    process.kill(gateway.processes[0]!.pid!, 'SIGUSR2');
    for (let i = 0; i < 200 && !existsSync(reportFile); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    report = JSON.parse(readFileSync(reportFile, 'utf8')) as ProbeReport;
  }, 120_000);

  afterAll(async () => {
    await gateway?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads none of the packages only other paths use (the MongoDB driver alone held 26 MiB)', () => {
    const loaded = loadedOnlyWhenUsed.filter((name) => report.modules.some((file) => file.includes(`/node_modules/${name}`)));
    expect(loaded).toEqual([]);
  });

  it('runs with the deployed young generation of 2 × 8 MiB, not 2 × 16 or V8’s own 2 × 64', () => {
    expect(report.newSpaceBytes).not.toBeNull();
    expect(report.newSpaceBytes!).toBeLessThanOrEqual(2 * 8 * 1024 * 1024);
  });

  it('builds no Intl.DateTimeFormat (Nest’s logger did at load: V8 then reads every ICU locale, ~5 MiB of RSS)', () => {
    expect(report.dateTimeFormats).toBe(0);
  });

  it('gave the start-up garbage back before it was ready: the young generation start-up grew to 2 × 8 MiB is shrunk again', () => {
    expect(report.readyNewSpaceBytes).not.toBeNull();
    expect(report.readyNewSpaceBytes!).toBeLessThanOrEqual(2 * 1024 * 1024);
  });
});
