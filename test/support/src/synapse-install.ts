// Finds a Python that can import Synapse, or installs Synapse into a project-local virtualenv
// (.cache/synapse-venv, git-ignored) so it never touches the system Python. Order:
//   FEDGATE_SYNAPSE_PYTHON → .cache/synapse-venv → python3/python on PATH → install the virtualenv.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface SynapseInstallation {
  python: string;
  version: string;
  source: 'environment' | 'project-venv' | 'system' | 'installed';
  installMs?: number;
}

// Room version 12 (the newest the gateway claims) arrived in Synapse 1.135.
const SYNAPSE_REQUIREMENT = process.env.FEDGATE_SYNAPSE_REQUIREMENT ?? 'matrix-synapse>=1.135';
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const defaultVenvDir = path.join(repoRoot, '.cache', 'synapse-venv');

function run(command: string, args: string[], timeoutMs: number) {
  return spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
}

function synapseVersion(python: string): string | undefined {
  const result = run(python, ['-c', 'import synapse; print(synapse.__version__)'], 60_000);
  return result.status === 0 ? result.stdout.trim() : undefined;
}

function venvPython(venvDir: string): string {
  return process.platform === 'win32' ? path.join(venvDir, 'Scripts', 'python.exe') : path.join(venvDir, 'bin', 'python');
}

const completeMarker = (venvDir: string) => path.join(venvDir, '.fedgate-complete');

function baseInterpreter(): string {
  const rejected: string[] = [];
  for (const candidate of ['python3.13', 'python3.12', 'python3.11', 'python3.10', 'python3', 'python']) {
    const result = run(candidate, ['-c', 'import sys, venv; print(sys.version_info >= (3, 10))'], 30_000);
    if (result.status === 0 && result.stdout.trim() === 'True') return candidate;
    if (result.status === 0) rejected.push(`${candidate} is older than 3.10`);
  }
  throw new Error(`Synapse needs Python 3.10 or newer with the venv module; none found on PATH${rejected.length ? ` (${rejected.join('; ')})` : ''}`);
}

/** Cross-process lock (jest runs test files in parallel workers) without native dependencies. */
async function withDirectoryLock<T>(lockDir: string, work: () => T): Promise<T> {
  const deadline = Date.now() + INSTALL_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const ageMs = Date.now() - statSync(lockDir, { throwIfNoEntry: false })!.mtimeMs;
      if (ageMs > INSTALL_TIMEOUT_MS) rmSync(lockDir, { recursive: true, force: true }); // a crashed installer
      if (Date.now() > deadline) throw new Error(`timed out waiting for another process to install Synapse (lock ${lockDir})`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    return work();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function installIntoVenv(venvDir: string): void {
  const logPath = `${venvDir}-install.log`;
  const fail = (step: string, result: ReturnType<typeof run>) => {
    writeFileSync(logPath, `${result.stdout ?? ''}\n${result.stderr ?? ''}\n${result.error ?? ''}`);
    const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-30).join('\n');
    return new Error(`installing Synapse failed at "${step}" (full output: ${logPath}):\n${tail}`);
  };
  rmSync(venvDir, { recursive: true, force: true });
  const created = run(baseInterpreter(), ['-m', 'venv', venvDir], 120_000);
  if (created.status !== 0) throw fail('python -m venv', created);
  const installed = run(venvPython(venvDir), ['-m', 'pip', 'install', '--quiet', SYNAPSE_REQUIREMENT], INSTALL_TIMEOUT_MS);
  if (installed.status !== 0) throw fail(`pip install ${SYNAPSE_REQUIREMENT}`, installed);
  writeFileSync(completeMarker(venvDir), `${SYNAPSE_REQUIREMENT}\n`);
}

export interface EnsureSynapseOptions {
  venvDir?: string;
  /** Skip Pythons outside the project virtualenv (to exercise the installer). */
  ignoreSystemPython?: boolean;
}

let found: Promise<SynapseInstallation> | undefined;

/** Returns a Python that imports Synapse, installing Synapse into the project virtualenv when needed. */
export function ensureSynapseInstalled(options: EnsureSynapseOptions = {}): Promise<SynapseInstallation> {
  if (options.venvDir || options.ignoreSystemPython) return locateOrInstall(options);
  found ??= locateOrInstall(options).catch((error: unknown) => {
    found = undefined; // let a later call retry, e.g. after the network came back
    throw error;
  });
  return found;
}

async function locateOrInstall(options: EnsureSynapseOptions): Promise<SynapseInstallation> {
  const venvDir = options.venvDir ?? defaultVenvDir;
  const fromEnvironment = process.env.FEDGATE_SYNAPSE_PYTHON;
  if (fromEnvironment) {
    const version = synapseVersion(fromEnvironment);
    if (!version) throw new Error(`FEDGATE_SYNAPSE_PYTHON=${fromEnvironment} cannot import synapse`);
    return { python: fromEnvironment, version, source: 'environment' };
  }
  const fromVenv = () => {
    const python = venvPython(venvDir);
    const version = existsSync(completeMarker(venvDir)) ? synapseVersion(python) : undefined;
    return version ? { python, version } : undefined;
  };
  const existing = fromVenv();
  if (existing) return { ...existing, source: 'project-venv' };
  if (!options.ignoreSystemPython) {
    for (const python of ['python3', 'python']) {
      const version = synapseVersion(python);
      if (version) return { python, version, source: 'system' };
    }
  }
  mkdirSync(path.dirname(venvDir), { recursive: true });
  const started = Date.now();
  return withDirectoryLock(`${venvDir}.lock`, () => {
    const installedMeanwhile = fromVenv();
    if (installedMeanwhile) return { ...installedMeanwhile, source: 'project-venv' as const };
    installIntoVenv(venvDir);
    const installed = fromVenv();
    if (!installed) throw new Error(`Synapse was installed into ${venvDir} but cannot be imported`);
    return { ...installed, source: 'installed' as const, installMs: Date.now() - started };
  });
}
