import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Domain libraries are pure: no framework, no bus, no database, no network or file I/O.
const ioModules = ['node:fs', 'node:fs/promises', 'fs', 'node:net', 'net', 'node:http', 'http', 'node:https', 'https',
  'node:http2', 'node:dgram', 'node:dns', 'dns', 'node:child_process', 'child_process', 'node:sqlite', 'node:tls', 'tls', 'node:cluster', 'node:worker_threads'];
const frameworkPackages = ['@nestjs/*', '@nats-io/*', 'mongodb', 'undici', 'pino', 'fastify', 'prom-client', '@opentelemetry/*', 'testcontainers', 'yaml'];

// domain: pure protocol and room-state logic. adapter: I/O (bus, store, HTTP, telemetry, config).
// service: a service's Nest modules and handlers, mounted by its own app and by the embedded gateway.
// app: process entry points. test: shared test support.
const boundaryConstraints = [
  { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain'], bannedExternalImports: frameworkPackages },
  { sourceTag: 'type:adapter', onlyDependOnLibsWithTags: ['type:domain', 'type:adapter'] },
  { sourceTag: 'type:service', onlyDependOnLibsWithTags: ['type:domain', 'type:adapter', 'type:service'] },
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:domain', 'type:adapter', 'type:service'] },
  { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['type:domain', 'type:adapter', 'type:service', 'type:app', 'type:test'] },
];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', 'data/**', '.cache/**', 'tools/cli/bin/**', '**/*.cjs', '**/*.mjs'] },
  ...nx.configs['flat/base'],
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', {
        enforceBuildableLibDependency: false,
        allow: [],
        depConstraints: boundaryConstraints,
      }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Tests and benchmarks of any project may use the shared test support (service starters, test CA).
    files: ['**/*.spec.ts', '**/__fixtures__/**/*.ts', 'tools/bench/**/*.ts', 'tools/fuzz/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', {
        enforceBuildableLibDependency: false,
        allow: ['@fedgate/testing'],
        depConstraints: boundaryConstraints,
      }],
    },
  },
  {
    files: ['libs/protocol/src/**/*.ts', 'libs/room-state/src/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/bench/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: ioModules.map((name) => ({ name, message: 'Domain libraries do no I/O: take data as arguments, leave I/O to adapters.' })) }],
    },
  },
);
