// Lint rules: the recommended sets plus the few that guard this project's standards
// (no eval-like constructs anywhere, since webviews run under a strict CSP).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ENGINE = {
  group: ['**/engine', '**/engine/**'],
  message: 'The engine (tfjs) stays out of here: run records are in src/runs/, task data readers in src/data/.',
};
const TFJS = {
  group: ['@tensorflow/*'],
  message: 'src/runs/ and src/data/ stay tfjs-free: the extension host and the dashboard load them.',
};
const VSCODE = { group: ['vscode'], message: 'The engine and the run records run outside VS Code too (trainer, CLI).' };

export default tseslint.config(
  { ignores: ['dist/**', '.venv*/**', 'out/**', 'node_modules/**', '.cache/**', 'test-output/**', '**/*.d.ts'] },
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
        URL: 'readonly',
        performance: 'readonly',
        WebAssembly: 'readonly',
        __dirname: 'readonly',
        require: 'readonly',
        module: 'writable',
      },
    },
    rules: {
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  // The layer fence (README, Architecture): the engine is the only place tfjs lives and never sees VS Code; the
  // extension and the dashboard reach runs through their records (src/runs/), never through the engine; the run
  // records and the task data readers (src/data/) stay tfjs-free so that the extension host and the browser
  // bundle can load them. The CLI may run the engine in-process, so it is outside the fence.
  {
    files: ['src/engine/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [VSCODE] }] },
  },
  {
    files: ['src/extension/**/*.ts', 'webview/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [ENGINE] }] },
  },
  {
    files: ['src/runs/**/*.ts', 'src/data/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [ENGINE, TFJS, VSCODE] }] },
  },
);
