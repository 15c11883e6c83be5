import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Domain libraries are pure: no framework, no bus, no database, no network or file I/O.
const ioModules = ['node:fs', 'node:fs/promises', 'fs', 'node:net', 'net', 'node:http', 'http', 'node:https', 'https',
  'node:http2', 'node:dgram', 'node:dns', 'dns', 'node:child_process', 'child_process', 'node:sqlite', 'node:tls', 'tls', 'node:cluster', 'node:worker_threads'];
const frameworkPackages = ['@nestjs/*', '@nats-io/*', 'mongodb', 'undici', 'pino', 'fastify', 'prom-client', '@opentelemetry/*', 'testcontainers', 'yaml'];

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
        depConstraints: [
          { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain'], bannedExternalImports: frameworkPackages },
          { sourceTag: 'type:adapter', onlyDependOnLibsWithTags: ['type:domain', 'type:adapter'] },
          { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:domain', 'type:adapter'] },
          { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['type:domain', 'type:adapter', 'type:app', 'type:test'] },
        ],
      }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
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
