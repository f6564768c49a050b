// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/http/generated/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // One owner of a task's life (docs/architecture.md): only the lifecycle changes a task's
    // state, its progress or its event log. Elsewhere a task is read, never written.
    files: ['src/**/*.ts'],
    ignores: ['src/orchestrator/task-lifecycle.ts', 'src/orchestrator/task-record.ts', 'src/tasks/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'AssignmentExpression > MemberExpression.left[object.name=/^(task|t|record|victim|evicted)$/][property.name=/^(state|replicaId|kvWarm|dispatchedAtMs|firstTokenAtMs|finishedAtMs|tokensOut|tokensIn|text|preemptions|priorRunMs)$/]',
          message:
            'Task state and progress change only in TaskLifecycle (src/orchestrator/task-lifecycle.ts).',
        },
        {
          selector:
            'UpdateExpression > MemberExpression.argument[object.name=/^(task|t|record)$/][property.name=/^(tokensOut|tokensIn|preemptions)$/]',
          message: 'Task progress changes only in TaskLifecycle (src/orchestrator/task-lifecycle.ts).',
        },
        {
          selector: "CallExpression[callee.property.name='append'][callee.object.property.name='log']",
          message:
            "A task's event log is appended to only by TaskLifecycle (src/orchestrator/task-lifecycle.ts).",
        },
      ],
    },
  },
  {
    // vitest's asymmetric matchers (expect.any, expect.stringMatching) are typed `any`.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
