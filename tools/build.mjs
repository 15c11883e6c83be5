// Compiles the TypeScript sources (apps, libs, tools, test support) to CommonJS under dist/.
// Test files are left out: jest compiles those itself with the same options.
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile, stat } from 'node:fs/promises';
import path from 'node:path';

const require = createRequire(import.meta.url);
const swc = require('@swc/core');
const { root, swcOptions } = require('./swc-options.cjs');

const SOURCE_DIRS = ['apps', 'libs', 'tools', 'test'];
const SKIP_DIRS = new Set(['node_modules', 'dist', '__fixtures__', 'data']);
const isTestFile = (f) => /\.(spec|test)\.ts$/.test(f) || f.endsWith('.d.ts');

async function* walk(dir) {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) yield* walk(full);
    } else if (e.name.endsWith('.ts') && !isTestFile(e.name)) {
      yield full;
    }
  }
}

async function isStale(src, out) {
  try {
    return (await stat(out)).mtimeMs < (await stat(src)).mtimeMs;
  } catch {
    return true;
  }
}

const started = Date.now();
const options = swcOptions();
// Files are rebuilt when older than their source, or all of them when the compile options changed (e.g. which
// packages are loaded lazily): an output compiled with other options is stale too.
const stampFile = path.join(root, 'dist', '.swc-options.sha256');
const optionsHash = createHash('sha256').update(JSON.stringify(options)).digest('hex');
const optionsChanged = (await readFile(stampFile, 'utf8').catch(() => '')) !== optionsHash;
let built = 0;
let seen = 0;
const jobs = [];
for (const dir of SOURCE_DIRS) {
  for await (const file of walk(path.join(root, dir))) {
    seen++;
    const rel = path.relative(root, file);
    const out = path.join(root, 'dist', rel.replace(/\.ts$/, '.js'));
    jobs.push(
      (async () => {
        if (!optionsChanged && !(await isStale(file, out))) return;
        const result = await swc.transformFile(file, { ...options, filename: file, outputPath: out });
        await mkdir(path.dirname(out), { recursive: true });
        await writeFile(out, result.code + `\n//# sourceMappingURL=${path.basename(out)}.map\n`);
        if (result.map) await writeFile(out + '.map', result.map);
        built++;
      })(),
    );
  }
}
await Promise.all(jobs);
if (optionsChanged) {
  await mkdir(path.dirname(stampFile), { recursive: true });
  await writeFile(stampFile, optionsHash);
}
if (process.env.FEDGATE_BUILD_QUIET !== '1') {
  console.error(`build: ${built} of ${seen} files compiled to dist/ in ${Date.now() - started} ms`);
}
