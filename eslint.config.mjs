// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'data/', 'node_modules/', 'test/generated/', 'client/generated/', 'test/artifacts/'] },
  eslint.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        Buffer: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
        performance: 'readonly',
        require: 'readonly',
        module: 'writable',
      },
      // Decorated properties keep their types at run time (type-graphql, TypeORM): consistent-type-imports knows.
      parserOptions: { emitDecoratorMetadata: true, experimentalDecorators: true },
    },
    rules: {
      // Unused arguments are named with a leading underscore where a signature requires them.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // `import type` keeps type-only imports out of the emitted JavaScript (and out of the import graph at run time).
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'error',
      // A callback may read a variable that is assigned once, after the callback is made.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['**/*.cjs', '**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The browser bundles (GraphiQL) and the scripts that build them.
    files: ['src/graphiql/app/**', 'scripts/*.mjs'],
    rules: { 'no-console': 'off' },
  },
);
