// ESLint flat config: recommended JS + TypeScript rules, no type-aware rules (fast enough to run on every test).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'native/build/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        performance: 'readonly',
        queueMicrotask: 'readonly',
        document: 'readonly',
        window: 'readonly',
        EventSource: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // Sans-IO core: no I/O, no timers, no clock reads (time is an argument, outputs are actions).
  // A guard so a stray Date.now() or fs call fails lint instead of making the core untestable.
  // node:crypto stays allowed (HMAC is pure computation).
  {
    files: ['src/wire/**', 'src/ecp/**', 'src/evb/**', 'src/vdp/**', 'src/node/**'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'setInterval', 'setImmediate', 'Date', 'performance', 'process'].map(
          (name) => ({ name, message: 'sans-IO core: take time and effects as arguments' }),
        ),
      ],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            'fs',
            'fs/promises',
            'net',
            'dgram',
            'child_process',
            'timers',
            'timers/promises',
            'worker_threads',
            'os',
          ].flatMap((m) =>
            [m, `node:${m}`].map((name) => ({
              name,
              message: 'sans-IO core: I/O belongs to the drivers at the edge',
            })),
          ),
        },
      ],
    },
  },
);
