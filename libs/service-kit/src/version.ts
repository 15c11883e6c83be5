import { readFileSync } from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

/** fedgate's version from the root package.json (found upwards from here, in src/ and in dist/ alike). */
export function fedgateVersion(): string {
  if (cached) return cached;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'fedgate' && manifest.version) return (cached = manifest.version);
    } catch {
      // not here; look further up
    }
    if (path.dirname(dir) === dir) return (cached = '0.0.0');
  }
}
