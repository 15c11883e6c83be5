// `npm run bench`: runs every suite in suites/ (or those named on the command line) and writes docs/benchmarks.md.
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchSection, BenchSuite } from './harness';

const END_TO_END_MARK = '<!-- end-to-end: kept by npm run bench -->';

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const suitesDir = path.join(__dirname, 'suites');
  const files = readdirSync(suitesDir).filter((f) => f.endsWith('.bench.js')).sort();
  const out: string[] = [];
  const root = path.resolve(__dirname, '..', '..', '..', '..');
  for (const file of files) {
    // Native import() of a CommonJS file puts module.exports under `default`.
    const loaded = (await import(path.join(suitesDir, file))) as { default: { default?: BenchSuite } & BenchSuite };
    const suite: BenchSuite = loaded.default.default ?? loaded.default;
    if (only.length && !only.includes(suite.name)) continue;
    process.stderr.write(`bench: ${suite.name}\n`);
    const sections: BenchSection[] = await suite.run();
    for (const s of sections) out.push(renderSection(suite.name, s));
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const header = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB memory, ${os.platform()} ${os.release()}; Node ${process.version}.`,
    '',
  ];
  mkdirSync(path.join(root, 'docs'), { recursive: true });
  const file = path.join(root, 'docs', 'benchmarks.md');
  // The end-to-end section (written by `npm run loadtest` and by hand) is not ours to drop.
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const kept = previous.includes(END_TO_END_MARK) ? ['', previous.slice(previous.indexOf(END_TO_END_MARK)).trimEnd()] : [];
  writeFileSync(file, [...header, ...out, ...kept].join('\n') + '\n');
  process.stderr.write(`bench: wrote ${path.relative(process.cwd(), file)}\n`);
}

function renderSection(suite: string, s: BenchSection): string {
  const lines = [`## ${suite}: ${s.title}`, '', '| measurement | result | note |', '|---|---|---|'];
  for (const r of s.rows) lines.push(`| ${r.name} | ${r.value} | ${r.note ?? ''} |`);
  if (s.targets?.length) {
    lines.push('', '| target | measured | met |', '|---|---|---|');
    for (const t of s.targets) lines.push(`| ${t.description} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  }
  if (s.notes?.length) lines.push('', ...s.notes.map((n) => `- ${n}`));
  lines.push('');
  return lines.join('\n');
}

main().catch((e) => {
  process.stderr.write(`bench: ${e?.stack ?? e}\n`);
  process.exit(1);
});
