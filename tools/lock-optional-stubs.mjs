// Keeps package-lock.json acceptable to `npm ci` on networks whose registry serves only this platform's
// packages. npm leaves out the optional per-platform binaries it cannot fetch (say @swc/core-darwin-arm64),
// and `npm ci` then refuses the lock as out of sync. This adds a stub entry (version, optional) for each
// missing optional dependency; npm ci skips them on platforms they are not for, and installs them where they
// can be fetched. Runs as the root postinstall, after npm has written the lock.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const file = path.resolve(import.meta.dirname, '..', 'package-lock.json');
if (!existsSync(file)) process.exit(0);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages ?? {};

function resolvedEntry(fromPath, name) {
  // Node's lookup: the nearest node_modules up from the dependent package.
  let dir = fromPath;
  for (;;) {
    const candidate = `${dir ? dir + '/' : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!dir) return undefined;
    const at = dir.lastIndexOf('node_modules/');
    dir = at <= 0 ? '' : dir.slice(0, at - 1);
  }
}

let added = 0;
for (const [from, entry] of Object.entries({ ...packages })) {
  for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
    if (resolvedEntry(from, name)) continue;
    const version = String(range).replace(/^[\^~=v\s]+/, '');
    packages[`node_modules/${name}`] = { version, optional: true };
    added++;
  }
}
if (added > 0) {
  lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
  writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
  console.error(`lock-optional-stubs: added ${added} optional entries npm could not fetch on this platform`);
}
