import nx from '@nx/eslint-plugin';

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
          depConstraints: [
            // The wire: zod only.
            { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: [] },
            // Pure TensorFlow.js libraries: never Nest, Prisma, BullMQ or a tfjs-node package.
            { sourceTag: 'type:ml', onlyDependOnLibsWithTags: ['type:ml', 'type:contracts'] },
            { sourceTag: 'type:compute', onlyDependOnLibsWithTags: ['type:ml', 'type:contracts'] },
            { sourceTag: 'type:data-access', onlyDependOnLibsWithTags: ['type:contracts', 'type:config'] },
            { sourceTag: 'type:config', onlyDependOnLibsWithTags: ['type:contracts'] },
            { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:contracts', 'type:data-access', 'type:config'] },
            { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:contracts', 'type:config', 'type:data-access', 'type:domain'] },
            // The API never imports TensorFlow.js code.
            { sourceTag: 'scope:api', notDependOnLibsWithTags: ['type:ml', 'type:compute'] },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:contracts', 'type:config', 'type:data-access', 'type:domain', 'type:ml', 'type:compute', 'type:testing'] },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
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
            { group: ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-wasm'], message: 'Backends are chosen once, in @ddae/compute.' },
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
