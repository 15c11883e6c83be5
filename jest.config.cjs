'use strict';
// Four suites, one runner:
//   unit    — *.spec.ts beside the code; pure, fakes for ports, no services.
//   medium  — *.medium.spec.ts; real NATS JetStream and a real MongoDB-wire database,
//             started once per run by test/support (URLs from the environment first).
//   e2e     — test/e2e and test/interop; whole gateways in processes, and Synapse as a peer.
//   adversarial — test/adversarial; a scripted malicious homeserver against in-process state-resolvers.
const path = require('node:path');
const { compilerOptions } = require('./tsconfig.base.json');
const { swcOptions } = require('./tools/swc-options.cjs');

const moduleNameMapper = {
  ...Object.fromEntries(
    Object.entries(compilerOptions.paths).map(([alias, [target]]) => [
      `^${alias.replace('/', '\\/')}$`,
      path.join(__dirname, target),
    ]),
  ),
  // matrix-appservice-bridge's native end-to-end encryption binding cannot be installed here (its install
  // script downloads a binary); the bridge suites bridge unencrypted rooms, and the stub throws if used.
  '^@matrix-org/matrix-sdk-crypto-nodejs$': path.join(__dirname, 'test/support/src/bridge/matrix-sdk-crypto-stub.cjs'),
};

// ESM-only packages that jest's CommonJS runtime must have compiled for it.
const esmPackages = ['@nestjs', 'matrix-js-sdk', 'matrix-events-sdk', 'matrix-widget-api', 'p-retry', 'is-network-error', 'uuid', 'file-type', 'oidc-client-ts', 'jwt-decode', '@matrix-org', 'content-type', 'cookie'];
// CommonJS builds that still call import() (the OTLP exporter loads node:http lazily), which jest's
// runtime can only run once swc has turned it into require().
const dynamicImportPackages = ['@opentelemetry/otlp-exporter-base'];

const { jsc, module: mod } = swcOptions();
// jest's CommonJS runtime cannot run import() without --experimental-vm-modules (NestFactory loads
// @nestjs/microservices that way), so under jest dynamic imports become require().
const transform = {
  '^.+\\.(t|j|mj|cj)s$': ['@swc/jest', { jsc: { ...jsc, paths: undefined, baseUrl: undefined }, module: { ...mod, ignoreDynamic: false }, sourceMaps: 'inline', swcrc: false }],
};

const common = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform,
  transformIgnorePatterns: [`/node_modules/(?!(${[...esmPackages, ...dynamicImportPackages].join('|')})/)`],
  moduleNameMapper,
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  // Relative to the root: a checkout may itself live in a directory named dist.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/dist/'],
};

module.exports = {
  // The counts tools/test.mjs prints (jest's own --json could not serialise a failure holding a circular object).
  reporters: ['default', ['<rootDir>/tools/jest-summary-reporter.cjs', { outputFile: '<rootDir>/test-results/jest.json' }]],
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{apps,libs,tools}/**/*.spec.ts', '<rootDir>/test/support/**/*.spec.ts'],
      testPathIgnorePatterns: [...common.testPathIgnorePatterns, '\\.medium\\.spec\\.ts$'],
    },
    {
      // In-process attacks on the engine by a scripted malicious homeserver (test/support/src/adversary); no services.
      ...common,
      displayName: 'adversarial',
      testMatch: ['<rootDir>/test/adversarial/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'medium',
      testMatch: ['<rootDir>/{apps,libs,tools}/**/*.medium.spec.ts'],
      globalSetup: '<rootDir>/test/support/src/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/src/global-teardown.ts',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/{e2e,interop}/**/*.spec.ts'],
      globalSetup: '<rootDir>/test/support/src/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/src/global-teardown.ts',
    },
  ],
};
