// Lint rules that keep the layers honest (see docs/architecture.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Timers, clocks and randomness a pure core must never touch. */
const impureGlobals = [
  { name: 'setTimeout', message: 'Pure cores take time from tick(); no timers.' },
  { name: 'setInterval', message: 'Pure cores take time from tick(); no timers.' },
  { name: 'setImmediate', message: 'Pure cores take time from tick(); no timers.' },
  { name: 'queueMicrotask', message: 'Pure cores are synchronous.' },
  { name: 'Promise', message: 'Pure cores are synchronous: no Promise.' },
  { name: 'process', message: 'Pure cores do no I/O.' },
  { name: 'performance', message: 'Pure cores take time from tick().' },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tessera/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Nothing in src/ depends on tests or benchmarks; only src/sim and src/cli may import the simulator.
    files: ['src/**/*.ts'],
    ignores: ['src/sim/**', 'src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/sim/**', '**/sim', '*/sim/*'],
              message: 'src/ must not import the simulator.',
            },
            {
              group: ['**/test/**', '**/bench/**'],
              message: 'src/ must not import tests or benchmarks.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/sim/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/test/**', '**/bench/**'],
              message: 'src/ must not import tests or benchmarks.',
            },
          ],
        },
      ],
    },
  },
  {
    // The consensus core is a pure, synchronous, deterministic state machine.
    files: ['src/raft/**/*.ts', 'src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Pure cores do no I/O: no node:* imports.' },
            {
              group: ['**/sim/**', '**/node/**', '**/server/**'],
              message: 'Pure cores depend on core/ only.',
            },
            {
              group: ['**/test/**', '**/bench/**'],
              message: 'src/ must not import tests or benchmarks.',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Pure cores take time from tick().' },
        {
          object: 'Math',
          property: 'random',
          message: 'Pure cores take randomness from an injected Rng.',
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'FunctionDeclaration[async=true]', message: 'Pure cores are synchronous.' },
        { selector: 'ArrowFunctionExpression[async=true]', message: 'Pure cores are synchronous.' },
        { selector: 'FunctionExpression[async=true]', message: 'Pure cores are synchronous.' },
        {
          selector: "NewExpression[callee.name='Date']",
          message: 'Pure cores take time from tick().',
        },
      ],
    },
  },
);
