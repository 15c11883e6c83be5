// The project's one test command (`npm test`, also what .ci/run calls):
// type-check, lint, then every jest suite (unit, adversarial, medium, e2e), ending with a plain
// "tests: N passed, N failed, N skipped" line that any CI log reader understands.
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const bin = (pkg, rel) => path.join(root, 'node_modules', pkg, rel);
const extra = process.argv.slice(2);
process.env.NX_DAEMON = 'false';
process.env.NX_NO_CLOUD = 'true';

function step(name, args) {
  const started = Date.now();
  console.log(`\n== ${name}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: process.env });
  console.log(`== ${name}: ${r.status === 0 ? 'ok' : 'FAILED'} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return r.status === 0;
}

console.log(`node ${process.version} (${process.execPath})`);
if (!process.version.startsWith('v24.')) {
  console.error('fedgate needs Node 24: run tests through npm (npm test), which puts the pinned Node first on PATH.');
  process.exit(1);
}

let ok = true;
if (extra.length === 0) {
  ok = step('typecheck', [bin('typescript', 'bin/tsc'), '-p', 'tsconfig.json', '--noEmit']) && ok;
  // The module-boundary rule needs Nx's project graph; without it the rule silently skips.
  ok = step('project graph', [bin('nx', 'dist/bin/nx.js'), 'show', 'projects']) && ok;
  ok = step('lint', [bin('eslint', 'bin/eslint.js'), '.', '--max-warnings=0']) && ok;
}
mkdirSync(path.join(root, 'test-results'), { recursive: true });
const report = path.join(root, 'test-results', 'jest.json');
// --forceExit: a file whose set-up failed half way (one of two gateways started, the other not) can leave a
// started peer behind whose pipes keep jest alive after the last test; the run must still end with its summary.
// jest.config.cjs's summary reporter writes the counts there (a stale file must not stand in for this run).
rmSync(report, { force: true });
const jestOk = step('jest', [bin('jest', 'bin/jest.js'), '--ci', '--forceExit', ...extra]);
ok = jestOk && ok;

let passed = 0, failed = 0, skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
  skipped = r.numPendingTests + r.numTodoTests;
  if (r.numTotalTests === 0) {
    console.error('jest ran no test');
    ok = false;
  }
} else {
  failed = 1;
}
if (!ok && failed === 0) failed = 1; // a failed typecheck or lint counts against the run
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(ok ? 0 : 1);
