'use strict';
// One swc configuration for the build and for jest, so tests run the code the build ships.
const path = require('node:path');
const root = path.resolve(__dirname, '..');
const { compilerOptions } = require(path.join(root, 'tsconfig.base.json'));

// Packages required at their first use rather than when the importing module loads (swc's `lazy`): the embedded
// gateway never uses the distributed shape's MongoDB driver (its BSON module allocates 17 MiB on load) or NATS
// client, and makes thumbnails, first-start certificates and OTLP exports only on some paths. Together they were
// ~45 MiB of the idle gateway's RSS (docs/benchmarks.md, issue 19). Side-effect-free imports only: a package listed
// here must not be needed for what loading it does.
const LOADED_AT_FIRST_USE = ['mongodb', '@nats-io/transport-node', '@nats-io/nats-core', '@nats-io/jetstream', 'sharp', 'node-forge', '@opentelemetry/exporter-trace-otlp-http'];

function swcOptions() {
  return {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      target: 'es2024',
      keepClassNames: true,
      baseUrl: root,
      paths: compilerOptions.paths,
    },
    module: { type: 'commonjs', ignoreDynamic: true, lazy: LOADED_AT_FIRST_USE },
    sourceMaps: true,
  };
}

module.exports = { root, swcOptions };
