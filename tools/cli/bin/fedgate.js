#!/usr/bin/env node
'use strict';
// Thin launcher: the command itself is TypeScript compiled into dist/ by `npm run build` (run by `npm ci`).
const path = require('node:path');
const fs = require('node:fs');
const root = path.resolve(__dirname, '..', '..', '..');
const entry = path.join(root, 'dist', 'tools', 'cli', 'src', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('fedgate: not built yet; run `npm run build` in ' + root + '\n');
  process.exit(2);
}
require(entry).main(process.argv.slice(2)).then(
  (code) => process.exit(code ?? 0),
  (err) => {
    process.stderr.write('fedgate: ' + (err && err.stack ? err.stack : String(err)) + '\n');
    process.exit(1);
  },
);
