// Lint is where the architecture's two hard rules are enforced:
// 1. consensus/ and the routing policy are pure (no I/O, clock, randomness, libp2p, node/).
// 2. no console outside cli/ (and bench/, whose job is printing).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const impureModules = [
  { group: ['node:*', 'fs', 'net', 'dgram', 'http', 'https', 'child_process', 'os', 'worker_threads', 'timers'], message: 'pure core: no Node I/O modules (inputs in, effects out)' },
  { group: ['libp2p', '@libp2p/*', '@chainsafe/*', 'level', 'classic-level'], message: 'pure core: no networking or storage libraries' },
  { group: ['**/node/*', '**/node/**', '**/cli/**', '**/simnet/**'], message: 'pure core may import only crypto/ and itself' },
];
const impureGlobals = [
  { name: 'setTimeout', message: 'pure core: schedule a timeout as an effect' },
  { name: 'setInterval', message: 'pure core: schedule a timeout as an effect' },
  { name: 'setImmediate', message: 'pure core: no timers' },
  { name: 'queueMicrotask', message: 'pure core: no scheduling' },
  { name: 'performance', message: 'pure core: time comes in as an input' },
  { name: 'process', message: 'pure core: no process state' },
  { name: 'fetch', message: 'pure core: no I/O' },
];
const impureSyntax = [
  { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'pure core: time comes in as an input' },
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'pure core: time comes in as an input' },
  { selector: "MemberExpression[object.name='Math'][property.name='random']", message: 'pure core: randomness comes in as an input (seeded)' },
  { selector: "MemberExpression[object.name='crypto'][property.name=/^(getRandomValues|randomUUID|randomBytes)$/]", message: 'pure core: randomness comes in as an input' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js', 'vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname },
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
  {
    files: ['consensus/**/*.ts', 'node/routing/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: impureModules }],
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-syntax': ['error', ...impureSyntax, { selector: "NewExpression[callee.name='Error']", message: 'use a typed error class with a code' }],
    },
  },
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
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
