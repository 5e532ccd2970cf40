import nx from '@nx/eslint-plugin';

/**
 * Which libraries each kind of project may import. `testOnly` tags are added for test files
 * (a domain library's integration test may use @ddae/testing; its code may not). Production code
 * (the API, worker and CLI apps, every library but testing, the tools) never imports
 * @ddae/testing: only spec files, libs/testing itself and the test harnesses (type:test-app:
 * apps/e2e, apps/chaos) do.
 */
const depConstraints = (testOnly) => {
  const only = (sourceTag, tags) => ({ sourceTag, onlyDependOnLibsWithTags: [...tags, ...testOnly] });
  return [
    // The wire: zod only.
    only('type:contracts', []),
    // Pure TensorFlow.js libraries: never Nest, Prisma, BullMQ or a tfjs-node package.
    // libs/config only for the environment (rawEnv): no process.env outside it.
    only('type:ml', ['type:ml', 'type:contracts', 'type:config']),
    only('type:compute', ['type:ml', 'type:contracts', 'type:render', 'type:config']),
    // PNG rendering (pngjs only): no other library.
    only('type:render', []),
    only('type:data-access', ['type:contracts', 'type:config']),
    // Offline migrations: the database URL helpers of libs/db, nothing of the domain.
    only('type:migrations', ['type:contracts', 'type:config', 'type:data-access']),
    only('type:config', ['type:contracts']),
    // The REST API's one client: the contracts and fetch, nothing else.
    only('type:api-client', ['type:contracts']),
    only('type:domain', ['type:contracts', 'type:data-access', 'type:config']),
    only('type:testing', ['type:contracts', 'type:api-client', 'type:config', 'type:data-access', 'type:migrations', 'type:domain', 'type:render']),
    // The API never imports TensorFlow.js code.
    { sourceTag: 'scope:api', notDependOnLibsWithTags: ['type:ml', 'type:compute'] },
    only('type:app', ['type:contracts', 'type:api-client', 'type:config', 'type:data-access', 'type:domain', 'type:ml', 'type:compute', 'type:render']),
    only('type:test-app', ['type:contracts', 'type:api-client', 'type:config', 'type:data-access', 'type:migrations', 'type:domain', 'type:ml', 'type:compute', 'type:render', 'type:testing']),
    // bench/ and scripts/: the libraries they measure or build (the orchestration bench seeds its
    // database's summaries with libs/db's own backfill), never test support.
    only('type:tool', ['type:contracts', 'type:config', 'type:data-access', 'type:ml', 'type:compute']),
  ];
};

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/node_modules', '**/dist', '**/tmp', '**/generated', '.nx', 'artifacts', '.demo'] },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: true,
          allow: [],
          depConstraints: depConstraints([]),
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Every environment variable is read through libs/config (a schema per app, rawEnv() for a
    // library's optional knob); tests and test support set up their own.
    files: ['**/*.ts'],
    ignores: ['libs/config/**', 'libs/testing/**', 'apps/e2e/**', '**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read the environment through @ddae/config (its env schemas, or rawEnv() for an optional library knob).' }],
    },
  },
  {
    files: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', { enforceBuildableLibDependency: true, allow: [], depConstraints: depConstraints(['type:testing']) }],
    },
  },
  {
    files: ['libs/diffusion/**/*.ts', 'libs/probe/**/*.ts', 'libs/datasets/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@nestjs/*', '@prisma/*', 'bullmq', 'ioredis', 'pg'], message: 'ML libraries stay pure: TensorFlow.js only.' },
            { group: ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-webgpu', 'webgpu'], message: 'Backends are chosen once, in @ddae/compute.' },
          ],
        },
      ],
    },
  },
  {
    files: ['apps/api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@tensorflow/*'], message: 'The API never loads TensorFlow.js.' }] },
      ],
    },
  },
];
