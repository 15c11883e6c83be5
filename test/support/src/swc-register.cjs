'use strict';
// `node -r <this> script.ts`: compiles TypeScript on require with the project's swc options
// (path aliases included), for child processes that tests spawn with process.execPath.
const Module = require('node:module');
const fs = require('node:fs');
const swc = require('@swc/core');
const { swcOptions } = require('../../../tools/swc-options.cjs');

const options = swcOptions();
Module._extensions['.ts'] = function compileTypeScript(module, filename) {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), { ...options, filename, sourceMaps: 'inline', swcrc: false });
  module._compile(code, filename);
};
