// The process settings the image gives every fedgate service (deploy/Dockerfile's `ENV NODE_OPTIONS=… MALLOC_…`
// line): memory bounds the tests' gateways must run with too, or the fuzzer measures another process.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const DOCKERFILE = path.resolve(__dirname, '..', '..', '..', '..', 'deploy', 'Dockerfile');
const RUNTIME_SETTING = /^(NODE_OPTIONS|MALLOC_[A-Z_]+)$/;

/** `NODE_OPTIONS` and `MALLOC_*` from the Dockerfile's ENV lines (`NAME=value`, `NAME="value"`). */
export function deployedRuntimeSettings(dockerfile: string = readFileSync(DOCKERFILE, 'utf8')): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const line of dockerfile.split('\n')) {
    if (!line.startsWith('ENV ')) continue;
    for (const [, name, quoted, bare] of line.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|(\S*))/g)) {
      if (RUNTIME_SETTING.test(name!)) settings[name!] = quoted ?? bare ?? '';
    }
  }
  return settings;
}

/** A child's environment with the deployed settings; the parent's own NODE_OPTIONS (e.g. a debug preload) come after. */
export function withDeployedRuntime(env: NodeJS.ProcessEnv, settings: Record<string, string> = deployedRuntimeSettings()): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...env, ...settings };
  if (settings.NODE_OPTIONS !== undefined && env.NODE_OPTIONS) merged.NODE_OPTIONS = `${settings.NODE_OPTIONS} ${env.NODE_OPTIONS}`;
  return merged;
}
