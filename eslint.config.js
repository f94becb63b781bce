// Lint is where the architecture's hard rules are enforced:
// 1. consensus/ and the routing policy are pure (no I/O, clock, randomness, libp2p, node/).
// 2. no console outside cli/ (and bench/, whose job is printing).
// 3. imports follow the layer table (eslint.purity.js `layers`).
// 4. sizes: no source file over 600 lines; in consensus/, node/ and simnet/ no function over 100.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

import { impureModules, impureGlobals, impureSyntax, layers, layerPatterns, layerNamed, sizeRules } from './eslint.purity.js';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js', 'eslint.purity.js', 'test/helpers/module-trace.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Error']", message: 'use a typed error class with a code (see crypto/errors.ts)' }],
    },
  },
  // 3. the layer table: who may import whom (before the purity blocks, which merge it in).
  ...layers.map((l) => ({ files: l.files, rules: { 'no-restricted-imports': ['error', { patterns: layerPatterns(l) }] } })),
  {
    files: ['consensus/**/*.ts', 'routing/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...impureModules, ...layerPatterns(layerNamed('consensus'))] }],
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-syntax': ['error', ...impureSyntax, { selector: "NewExpression[callee.name='Error']", message: 'use a typed error class with a code' }],
    },
  },
  {
    files: ['base/errors.ts', 'base/hex.ts', 'base/prng.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...impureModules, ...layerPatterns(layerNamed('base'))] }],
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-syntax': ['error', ...impureSyntax, { selector: "NewExpression[callee.name='Error']", message: 'use a typed error class with a code' }],
    },
  },
  // 4. sizes (exported for test/unit/meta/lint.test.ts).
  ...sizeRules,
  { files: ['cli/**/*.ts', 'bench/**/*.ts'], rules: { 'no-console': 'off' } },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-syntax': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  { files: ['eslint.config.js', 'eslint.purity.js'], ...tseslint.configs.disableTypeChecked },
  // The dashboard's browser script (node/dashboard/assets/): plain JavaScript shipped as is, no type information.
  {
    files: ['node/dashboard/assets/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, sourceType: 'script', globals: { document: 'readonly', window: 'readonly', fetch: 'readonly', EventSource: 'readonly', console: 'readonly' } },
  },
  // Scripts shipped for containers (contrib/docker/): plain Node ESM run by the image's entrypoint.
  {
    files: ['contrib/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, sourceType: 'module', globals: { process: 'readonly' } },
  },
);
